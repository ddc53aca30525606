"""Benchmarks (`make bench`): requests per operation, time against N, rate limits, overhead, memory."""
