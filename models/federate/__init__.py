"""Federated fine-tuning across sites (`forewarn federate`): Flower server and site clients.

Every site's training node holds a copy of the same base bundle's FP32 student and its own
labelled windows; each round it fine-tunes the global model on them and sends back only the
weights. The server aggregates (FedAvg or FedProx) and writes an ordinary INT8 bundle.

    local      torch only: a site's windows, local training, its canary, the bundle out
    flower     the Flower server (strategy, site authentication) and site client
    cli        the click commands; Flower is imported when a command runs ([federate] extra)
"""
