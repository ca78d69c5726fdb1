"""Fine-tuning: LoRA SFT jobs run by a worker process, with checkpoints, resume and export."""
