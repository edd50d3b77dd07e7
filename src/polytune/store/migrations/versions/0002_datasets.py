"""datasets: what a file holds and what a job's data holds

Revision ID: 0002_datasets
Revises: 0002_oxen_repos
"""

from alembic import op
import sqlalchemy as sa


revision = "0002_datasets"
down_revision = "0002_oxen_repos"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # files: the format and example count found at upload (null for other purposes or errors).
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_report", sa.JSON(), nullable=True))
    # jobs: examples, tokens, dropped/truncated lines and billable tokens, found at validation.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_report", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("data_report")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_column("data_report")
