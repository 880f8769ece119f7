"""Executors carry out a deploy: a Swarm service update, or a command."""
