"""operator verdicts and who resolved an alert

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (
    ("resolved_by", sa.String(length=64)),
    ("verdict", sa.String(length=16)),
    ("verdict_fault", sa.String(length=48)),
    ("verdict_by", sa.String(length=64)),
    ("verdict_at", sa.Float()),
    ("verdict_note", sa.String(length=500)),
)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.create_index("ix_alerts_verdict", ["verdict"])


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_verdict")
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
