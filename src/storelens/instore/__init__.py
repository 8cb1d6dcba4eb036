"""In-store operations: order fulfillment, barista productivity, queues, dwell, alerts."""
