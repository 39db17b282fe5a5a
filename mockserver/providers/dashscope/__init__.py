"""The dashscope family."""
