"""OpenRouter video generation (POST /api/v1/videos): contracts/openrouter.yaml."""
