"""The Sparkplug B protobuf messages, built at run time from a descriptor (no generated ``_pb2``).

Why not generated code: neither Sparkplug library on PyPI (``pysparkplug`` 0.6,
``mqtt-spb-wrapper`` 2.1) accepts paho-mqtt 2, and a ``_pb2.py`` from ``protoc`` refuses
to import under a protobuf runtime older than the ``protoc`` that wrote it. The gateway
already has protobuf (onnxruntime requires it), and a descriptor built here works with any
protobuf from 4.25 on. ``sparkplug_b.proto`` beside this file is the same schema as text;
a unit test checks the two agree field by field.

``MESSAGES`` lists each message as ``(fields, first extension number or None)``, a field as
``(label, type, name, number)``: label ``optional``, ``repeated`` or ``oneof`` (a member of
the message's one ``oneof value``); a type is a scalar or another message of this table.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"
_MAX_FIELD = 536_870_912  # "extensions N to max": the end is exclusive, one past 2^29 - 1

Field = tuple[str, str, str, int]

MESSAGES: dict[str, tuple[list[Field], int | None]] = {
    "Payload": (
        [
            ("optional", "uint64", "timestamp", 1),
            ("repeated", "Payload.Metric", "metrics", 2),
            ("optional", "uint64", "seq", 3),
            ("optional", "string", "uuid", 4),
            ("optional", "bytes", "body", 5),
        ],
        6,
    ),
    "Payload.Template": (
        [
            ("optional", "string", "version", 1),
            ("repeated", "Payload.Metric", "metrics", 2),
            ("repeated", "Payload.Template.Parameter", "parameters", 3),
            ("optional", "string", "template_ref", 4),
            ("optional", "bool", "is_definition", 5),
        ],
        6,
    ),
    "Payload.Template.Parameter": (
        [
            ("optional", "string", "name", 1),
            ("optional", "uint32", "type", 2),
            ("oneof", "uint32", "int_value", 3),
            ("oneof", "uint64", "long_value", 4),
            ("oneof", "float", "float_value", 5),
            ("oneof", "double", "double_value", 6),
            ("oneof", "bool", "boolean_value", 7),
            ("oneof", "string", "string_value", 8),
            ("oneof", "Payload.Template.Parameter.ParameterValueExtension", "extension_value", 9),
        ],
        None,
    ),
    "Payload.Template.Parameter.ParameterValueExtension": ([], 1),
    "Payload.DataSet": (
        [
            ("optional", "uint64", "num_of_columns", 1),
            ("repeated", "string", "columns", 2),
            ("repeated", "uint32", "types", 3),
            ("repeated", "Payload.DataSet.Row", "rows", 4),
        ],
        5,
    ),
    "Payload.DataSet.DataSetValue": (
        [
            ("oneof", "uint32", "int_value", 1),
            ("oneof", "uint64", "long_value", 2),
            ("oneof", "float", "float_value", 3),
            ("oneof", "double", "double_value", 4),
            ("oneof", "bool", "boolean_value", 5),
            ("oneof", "string", "string_value", 6),
            ("oneof", "Payload.DataSet.DataSetValue.DataSetValueExtension", "extension_value", 7),
        ],
        None,
    ),
    "Payload.DataSet.DataSetValue.DataSetValueExtension": ([], 1),
    "Payload.DataSet.Row": ([("repeated", "Payload.DataSet.DataSetValue", "elements", 1)], 2),
    "Payload.PropertyValue": (
        [
            ("optional", "uint32", "type", 1),
            ("optional", "bool", "is_null", 2),
            ("oneof", "uint32", "int_value", 3),
            ("oneof", "uint64", "long_value", 4),
            ("oneof", "float", "float_value", 5),
            ("oneof", "double", "double_value", 6),
            ("oneof", "bool", "boolean_value", 7),
            ("oneof", "string", "string_value", 8),
            ("oneof", "Payload.PropertySet", "propertyset_value", 9),
            ("oneof", "Payload.PropertySetList", "propertysets_value", 10),
            ("oneof", "Payload.PropertyValue.PropertyValueExtension", "extension_value", 11),
        ],
        None,
    ),
    "Payload.PropertyValue.PropertyValueExtension": ([], 1),
    "Payload.PropertySet": (
        [("repeated", "string", "keys", 1), ("repeated", "Payload.PropertyValue", "values", 2)],
        3,
    ),
    "Payload.PropertySetList": ([("repeated", "Payload.PropertySet", "propertyset", 1)], 2),
    "Payload.MetaData": (
        [
            ("optional", "bool", "is_multi_part", 1),
            ("optional", "string", "content_type", 2),
            ("optional", "uint64", "size", 3),
            ("optional", "uint64", "seq", 4),
            ("optional", "string", "file_name", 5),
            ("optional", "string", "file_type", 6),
            ("optional", "string", "md5", 7),
            ("optional", "string", "description", 8),
        ],
        9,
    ),
    "Payload.Metric": (
        [
            ("optional", "string", "name", 1),
            ("optional", "uint64", "alias", 2),
            ("optional", "uint64", "timestamp", 3),
            ("optional", "uint32", "datatype", 4),
            ("optional", "bool", "is_historical", 5),
            ("optional", "bool", "is_transient", 6),
            ("optional", "bool", "is_null", 7),
            ("optional", "Payload.MetaData", "metadata", 8),
            ("optional", "Payload.PropertySet", "properties", 9),
            ("oneof", "uint32", "int_value", 10),
            ("oneof", "uint64", "long_value", 11),
            ("oneof", "float", "float_value", 12),
            ("oneof", "double", "double_value", 13),
            ("oneof", "bool", "boolean_value", 14),
            ("oneof", "string", "string_value", 15),
            ("oneof", "bytes", "bytes_value", 16),
            ("oneof", "Payload.DataSet", "dataset_value", 17),
            ("oneof", "Payload.Template", "template_value", 18),
            ("oneof", "Payload.Metric.MetricValueExtension", "extension_value", 19),
        ],
        None,
    ),
    "Payload.Metric.MetricValueExtension": ([], 1),
}

_F = descriptor_pb2.FieldDescriptorProto
SCALARS: dict[str, int] = {
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
LABELS = {"optional": _F.LABEL_OPTIONAL, "oneof": _F.LABEL_OPTIONAL, "repeated": _F.LABEL_REPEATED}


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """``MESSAGES`` as the FileDescriptorProto ``protoc`` would make of sparkplug_b.proto."""
    proto = descriptor_pb2.FileDescriptorProto(name="forewarn/sparkplug_b.proto", package=PACKAGE, syntax="proto2")
    built: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path, (fields, extensions_from) in MESSAGES.items():  # parents are listed before their nested messages
        parent, _, name = path.rpartition(".")
        message = (built[parent].nested_type if parent else proto.message_type).add(name=name)
        built[path] = message
        if any(label == "oneof" for label, _, _, _ in fields):
            message.oneof_decl.add(name="value")
        for label, type_, field_name, number in fields:
            field = message.field.add(name=field_name, number=number, label=LABELS[label])
            if type_ in SCALARS:
                field.type = SCALARS[type_]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}.{type_}"
            if label == "oneof":
                field.oneof_index = 0
        if extensions_from is not None:
            message.extension_range.add(start=extensions_from, end=_MAX_FIELD)
    return proto


def _payload_class() -> Any:
    """The ``Payload`` message class, from a private pool (it cannot clash with another copy of the schema)."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))


Payload: Any = _payload_class()
"""The protobuf class of a Sparkplug B payload; ``Payload.Metric`` and the others are nested in it."""
