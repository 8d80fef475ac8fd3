"""Locust scenarios. Each file runs on its own: `locust -f loadtests/read.py --host URL`."""
