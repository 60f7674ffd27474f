"""Prometheus export of the KPI tables: a collector that reads them at scrape time."""

from stream.exporter.collector import KpiCollector

__all__ = ["KpiCollector"]
