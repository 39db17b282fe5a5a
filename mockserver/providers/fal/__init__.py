"""fal.ai: the queue (queue.fal.run), the run host (fal.run), storage and webhook keys."""
