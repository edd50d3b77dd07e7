"""integrations: an organization's encrypted secrets (its W&B API key)

Revision ID: 0003_integrations
Revises: 0002_datasets
"""

from alembic import op
import sqlalchemy as sa


revision = "0003_integrations"
down_revision = "0002_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_secrets",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("org_id", "name", name="uq_org_secrets_org_name"),
    )
    with op.batch_alter_table("org_secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_secrets_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_secrets_org_id"))
    op.drop_table("org_secrets")
