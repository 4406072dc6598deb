"""burstd."""
