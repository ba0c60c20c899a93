"""Importers: public datasets and a plant's own exports -> Forewarn dataset directories.

common.py   contract-safe names, the import report, writing a directory
cmapss.py   NASA C-MAPSS turbofan runs to failure (RUL)
cwru.py     Case Western Reserve bearing recordings (.mat, kHz vibration)
hdfs.py     HDFS block sessions of log templates (log anomalies)
csv.py      a plant historian's CSV + events + work orders, described by a TOML mapping
cli.py      `forewarn data import ...`
"""
