"""`forewarn demo` and the brokers it starts: every role on one machine, on embedded defaults.

The top of the layering: the demo runs the simulator, the gateway (``edge_agent``) and the
stream worker as child processes, and ``demo.brokers`` starts a tansu Kafka and an amqtt
MQTT broker when none is configured. Nothing in the shared core or a role imports it, so a
gateway never loads it; the tests and benchmarks use its brokers. Installed with
``pip install 'forewarn[demo]'``.
"""
