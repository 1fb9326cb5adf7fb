"""Decoupled async GRPO: actor processes roll out groups, a learner trains, Redis carries both ways.

Run it with ``python -m alpagym_train.grpo`` (Hydra; configs in ``alpagym_train/conf/grpo.yaml`` and
the ``env``, ``reward``, ``algorithm`` and ``topology`` groups beside it):

- `config`: the strict structured config;
- `actor`: follows the published weights and pushes whole groups tagged with their version;
- `learner`: drops stale groups (invalid ones are dead-lettered by `alpagym_train.wire` checks),
  applies the shared `GRPOUpdater.update` (or, with ``algorithm=ppo``, `PPOUpdater`'s, whose critic
  stays in the learner), publishes weights, logs, checkpoints and resumes (`checkpoint`);
- `launch`: ``role=all``, a private redis-server, the learner and supervised actors on one machine;
- `identity`: the run's unique id and lease, its secret and the Redis password, passed privately;
- `preflight`: the checks run before any process starts.

Every process exits with an `alpagym_train.exit_codes.ExitCode`.
"""
