"""Sparkplug B for the gateway: read device data as telemetry, publish predictions and health as an edge node.

    schema.py   the Sparkplug B protobuf messages, built at run time (sparkplug_b.proto is the same as text)
    codec.py    topics, datatypes, payloads <-> Python values, alias resolution
    host.py     ingest: births, sequence numbers, rebirth requests, DDATA -> Telemetry
    node.py     publishing: NBIRTH/NDEATH (bdSeq), DBIRTH/DDATA per asset, NDATA health, rebirth
    link.py     the Sparkplug MQTT connection that carries both (its own will: the NDEATH)
    config.py   the ``[sparkplug]`` config section

See docs/edge.md, "Sparkplug B".
"""
