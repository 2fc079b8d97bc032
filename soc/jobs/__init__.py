"""Scheduled, incremental hunts: configuration, schedules, checkpoints, state across runs, one run, the scheduler."""
