"""Offline proof of a stack's cluster definition with Pacemaker's, Corosync's, HAProxy's and cloud-init's own tools."""
