"""The lab: the real program on real cluster nodes (systemd-nspawn containers) on one machine."""
