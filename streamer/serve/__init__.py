"""The monitor service: many patients' ECG streams through a broker, scored by workers that share them.

- `messages`: what travels (chunks, beat events, dead letters) and which partition a patient is in;
- `transport`: what the service needs from a broker (the `Bus` protocol);
- `nats_bus`: that protocol on NATS JetStream;
- `worker`: a monitor worker (leases, one pool for its patients, checkpoints, exactly-once events);
- `publisher`: recorded ECGs replayed as live patients (the load generator, a device gateway's example);
- `watch`: the service-wide view (workers, partitions, lag, beats, anomalies, drops).
"""
