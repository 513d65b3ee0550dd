"""Operations: keys, the console's figures, integrity, backups, snapshots, the demo."""
