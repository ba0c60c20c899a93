"""ISA-18.2 alarm states: shelved, out of service, suppressed by design, latched, chattering

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("suppression", sa.String(length=16), None),
    ("suppression_reason", sa.String(length=500), None),
    ("shelved_by", sa.String(length=64), None),
    ("shelved_until", sa.Float(), None),
    ("latched", sa.Boolean(), sa.false()),
    ("chattering", sa.Boolean(), sa.false()),
)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for name, type_, default in COLUMNS:
            nullable = default is None
            batch.add_column(sa.Column(name, type_, nullable=nullable, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for name, _, _ in reversed(COLUMNS):
            batch.drop_column(name)
