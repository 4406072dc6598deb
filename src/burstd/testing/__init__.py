"""Test helpers shipped with burstd: stand-ins for what cannot run here (no GPU)."""
