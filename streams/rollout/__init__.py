"""Rollout: flagd-compatible bucketing, flag-definition export, and the canary analyzer (all pure)."""
