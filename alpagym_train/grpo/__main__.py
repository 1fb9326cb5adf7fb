"""`python -m alpagym_train.grpo key=value ...`: decoupled async GRPO (see `alpagym_train.grpo`)."""

from __future__ import annotations

import signal
import sys


def main() -> None:
    import hydra
    from omegaconf import OmegaConf

    from alpagym_train.grpo.config import GRPORunConfig, register

    register()
    status = {"code": 0}

    @hydra.main(config_path="../conf", config_name="grpo", version_base="1.3")
    def run(cfg) -> None:
        try:
            conf: GRPORunConfig = OmegaConf.to_object(cfg)
            status["code"] = dispatch(conf)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            status["code"] = 2

    run()
    sys.exit(status["code"])


def dispatch(cfg) -> int:
    """Runs `cfg.role` in this process; returns the exit status."""
    from alpagym_train.grpo.launch import interrupt, run_all, run_id_for

    if cfg.role == "all":
        return run_all(cfg)
    if cfg.redis.url is None:
        print(
            f"role={cfg.role} needs redis.url=redis://host:port/db (the server of the run)", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGTERM, interrupt)  # a SIGTERM stops it as Ctrl-C does (checkpoint first)
    if cfg.role == "learner":
        from alpagym_train.grpo.learner import run_learner

        return run_learner(cfg, cfg.redis.url, run_id_for(cfg))
    from alpagym_train.grpo.actor import run_actor

    return run_actor(cfg, cfg.redis.url, cfg.redis.run_id, sharing=1)


if __name__ == "__main__":
    main()
