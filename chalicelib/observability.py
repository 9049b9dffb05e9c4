"""Logs and metrics (Powertools), with service and namespace given explicitly.

Every log line of a request carries its request id and the caller's username. Nothing
secret is logged: request bodies and headers never reach the logger.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

from chalicelib.config import metrics_namespace

SERVICE = "nshub"
# One namespace per stage (the stack sets it), so two stages in one account never mix figures.
METRICS_NAMESPACE = metrics_namespace()

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
