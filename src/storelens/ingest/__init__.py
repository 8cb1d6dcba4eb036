"""Ways events enter the log: HTTP batches, files, and (later) MQTT and edge outboxes."""
