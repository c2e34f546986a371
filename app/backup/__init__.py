"""Backups: consistent snapshots of everything docchat owns, verified and restored."""
