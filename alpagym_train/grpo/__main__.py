"""`python -m alpagym_train.grpo key=value ...`: decoupled async GRPO (see `alpagym_train.grpo`).

``--help`` lists every key with its default and a one-line description taken from the config schema's
docstrings. Keys are strict: an unknown key, also one added with ``+key=value``, is an error. The exit
status is an `alpagym_train.exit_codes.ExitCode`.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def config_help() -> str:
    """The ``--help`` text: usage, presets, then every key with its default and description."""
    from alpagym_train.grpo.config import GRPORunConfig
    from alpagym_train.hydra_schema import describe

    rows = describe(GRPORunConfig)
    width = max(len(k) for k, _, _ in rows)
    conf = Path(__file__).resolve().parent.parent / "conf"
    groups = ", ".join(
        f"{g}=" + "|".join(sorted(p.stem for p in (conf / g).glob("*.yaml")))
        for g in ("env", "reward", "algorithm", "topology")
    )
    lines = [
        "usage: python -m alpagym_train.grpo [key=value ...]",
        "",
        f"Decoupled async GRPO over Redis. Presets: {groups}.",
        "Unknown keys (also +key=value) are errors.",
        "",
        "keys (default) description:",
    ]
    for key, default, doc in rows:
        if key.startswith("reward.terms"):
            continue
        lines.append(f"  {key:<{width}}  ({default}) {doc}")
    return "\n".join(lines)


def main() -> None:
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(config_help())
        sys.exit(0)
    import hydra
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from alpagym_train.exit_codes import ExitCode
    from alpagym_train.grpo.config import GRPORunConfig, from_plain, register
    from alpagym_train.transport import TransportError

    register()
    status = {"code": ExitCode.OK}

    @hydra.main(config_path="../conf", config_name="grpo", version_base="1.3")
    def run(cfg) -> None:
        try:
            try:
                # Merged into the bare schema again: a key added with `+key=` has no field there and raises.
                conf: GRPORunConfig = from_plain(OmegaConf.to_container(cfg, resolve=True))
            except OmegaConfBaseException as e:
                raise ValueError(
                    f"invalid config: {str(e).splitlines()[0]} (see --help for the keys)"
                ) from None
            status["code"] = dispatch(conf)
        except TransportError as e:
            print(f"error: {e}", file=sys.stderr)
            status["code"] = ExitCode.REDIS_LOST
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            status["code"] = ExitCode.CONFIG

    run()
    sys.exit(int(status["code"]))


def dispatch(cfg) -> int:
    """Runs `cfg.role` in this process; returns its `ExitCode`."""
    from alpagym_train.exit_codes import ExitCode
    from alpagym_train.grpo.identity import ensure_secret, read_secret, run_id_for, with_password
    from alpagym_train.grpo.launch import interrupt, run_all

    if cfg.role == "all":
        return run_all(cfg)
    if cfg.redis.url is None:
        print(
            f"role={cfg.role} needs redis.url=redis://host:port/db (the server of the run)", file=sys.stderr
        )
        return ExitCode.CONFIG
    url = with_password(cfg.redis.url)
    signal.signal(signal.SIGTERM, interrupt)  # a SIGTERM stops it as Ctrl-C does (checkpoint first)
    if cfg.role == "learner":
        from alpagym_train.grpo.learner import run_learner

        secret = ensure_secret(cfg)
        print(f"run secret in {cfg.run_dir}/run_secret unless set: give it to the actors out of band "
              "(redis.secret_file=... or ALPAGYM_RUN_SECRET)", flush=True)  # fmt: skip
        return run_learner(cfg, url, run_id_for(cfg), secret)
    from alpagym_train.grpo.actor import run_actor

    secret = read_secret(cfg)
    if secret is None:
        print("role=actor needs the run secret: redis.secret_file=PATH (mode 0600) or ALPAGYM_RUN_SECRET",
              file=sys.stderr)  # fmt: skip
        return ExitCode.CONFIG
    return run_actor(cfg, url, cfg.redis.run_id, sharing=1, secret=secret)


if __name__ == "__main__":
    main()
