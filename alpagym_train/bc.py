"""`python -m alpagym_train.bc`: open-loop behaviour cloning on the expert logs of a suite.

The open-loop baseline: regress the policy's deterministic action tanh(mu(obs)) onto the expert's
actions (`alpagym_env.expert_dataset`, from the train suite) by mean squared error, with a validation
loss on the val suite, early stopping on it, and the best checkpoint written to
``{out_dir}/policy.safetensors`` (+ JSON sidecar). The policy's log-std is left at `init_log_std`:
it is the exploration noise closed-loop post-training starts from.

Configuration is a Hydra structured config (`BCConfig`, strict: unknown keys raise), e.g.
``python -m alpagym_train.bc train_scenes=200 epochs=20 out_dir=runs/bc`` (default: the whole train suite).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from alpagym_train.policy import GaussianPolicy, PolicyConfig, save


@dataclass
class BCConfig:
    """Behaviour-cloning settings.

    Attributes:
        suite: Training suite.
        val_suite: Validation suite.
        train_scenes: Use only the first N training scenes (None: all).
        val_scenes: Use only the first N validation scenes (None: all).
        action_type: ``"control"`` or ``"trajectory"``.
        perturb: Std of the noise added to the executed expert actions of a second, perturbed copy of
            the training rollouts (0: clean logs only); the labels stay the expert's corrections
            (`alpagym_env.expert_dataset`), which teaches recovering from the policy's own drift.
        env: Extra env arguments (`EnvConfig` fields), recorded in the checkpoint.
        hidden: Hidden layer widths.
        normalize_obs: Standardise observations with the training data's statistics
            (`PolicyConfig.normalize_obs`).
        init_log_std: The policy's (untrained) log-std.
        lr: Adam learning rate.
        batch_size: Samples per gradient step.
        epochs: Maximum passes over the data.
        patience: Epochs without a better validation loss before stopping.
        seed: Torch and sampling seed.
        out_dir: Where the checkpoint and metrics go.
        progress: Show a progress bar.
    """

    suite: str = "train"
    val_suite: str = "val"
    train_scenes: int | None = None
    val_scenes: int | None = None
    action_type: str = "control"
    perturb: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    normalize_obs: bool = True
    init_log_std: float = -1.0
    lr: float = 1e-3
    batch_size: int = 512
    epochs: int = 40
    patience: int = 5
    seed: int = 0
    out_dir: str = "runs/bc"
    progress: bool = True


def _scenes(name: str, limit: int | None):
    from alpagym_env.scenarios import load_suite

    scenes = load_suite(name)
    return scenes[:limit] if limit else scenes


def train_bc(cfg: BCConfig) -> tuple[GaussianPolicy, dict[str, Any]]:
    """Trains, early-stops on the validation loss and writes the best checkpoint.

    Returns:
        The best policy and a summary (losses per epoch, best epoch, sizes, seconds).
    """
    from alpagym_env import expert_dataset

    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    scenes = _scenes(cfg.suite, cfg.train_scenes)
    train = expert_dataset(scenes, cfg.action_type, **cfg.env)
    x, y = torch.as_tensor(train.observations), torch.as_tensor(train.actions)
    if cfg.perturb > 0:
        noisy = expert_dataset(scenes, cfg.action_type, perturb=cfg.perturb, seed=cfg.seed, **cfg.env)
        x = torch.cat([x, torch.as_tensor(noisy.observations)])
        y = torch.cat([y, torch.as_tensor(noisy.actions)])
    val = expert_dataset(_scenes(cfg.val_suite, cfg.val_scenes), cfg.action_type, **cfg.env)
    vx, vy = torch.as_tensor(val.observations), torch.as_tensor(val.actions)
    pcfg = PolicyConfig(x.shape[1], y.shape[1], tuple(cfg.hidden), init_log_std=cfg.init_log_std,
                        normalize_obs=cfg.normalize_obs)  # fmt: skip
    policy = GaussianPolicy(pcfg)
    if cfg.normalize_obs:
        policy.set_obs_normalizer(x)
    opt = torch.optim.Adam([p for n, p in policy.named_parameters() if "log_std" not in n], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, best_epoch, history = float("inf"), None, -1, []
    bar = tqdm(range(cfg.epochs), desc="bc", disable=not cfg.progress)
    for epoch in bar:
        policy.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = ((torch.tanh(policy(x[idx])[0]) - y[idx]) ** 2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        with torch.no_grad():
            val_loss = ((torch.tanh(policy(vx)[0]) - vy) ** 2).sum(-1).mean().item()
        history.append({"epoch": epoch, "train_loss": total / len(x), "val_loss": val_loss})
        bar.set_postfix(train=f"{total / len(x):.4f}", val=f"{val_loss:.4f}")
        if val_loss < best - 1e-6:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in policy.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    policy.load_state_dict(best_state)
    policy.eval()
    summary = {
        "best_epoch": best_epoch,
        "best_val_loss": best,
        "history": history,
        "train_samples": len(x),
        "val_samples": len(vx),
        "seconds": time.perf_counter() - t0,
    }
    meta = {
        "action_type": cfg.action_type,
        "env_kwargs": {"action_type": cfg.action_type, **cfg.env},
        "obs_dim": int(x.shape[1]),
        "trained_by": "alpagym_train.bc",
        "bc": {k: v for k, v in summary.items() if k != "history"},
        "bc_config": asdict(cfg),
    }
    out = Path(cfg.out_dir)
    save(out / "policy.safetensors", policy, meta)
    (out / "bc_metrics.json").write_text(json.dumps(summary, indent=2))
    return policy, summary


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="bc_schema", node=BCConfig)


def main() -> None:
    import hydra
    from omegaconf import OmegaConf

    _register()

    @hydra.main(config_path="conf", config_name="bc", version_base="1.3")
    def run(cfg) -> None:
        conf = BCConfig(**OmegaConf.to_container(cfg, resolve=True))
        _, summary = train_bc(conf)
        print(
            f"best val loss {summary['best_val_loss']:.4f} at epoch {summary['best_epoch']} "
            f"({summary['train_samples']} samples, {summary['seconds']:.0f} s) -> {conf.out_dir}"
        )

    run()


if __name__ == "__main__":
    main()
