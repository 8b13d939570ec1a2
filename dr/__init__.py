"""DR operations for the devops-metrics tables: status, replication, verify/repair, failover."""
