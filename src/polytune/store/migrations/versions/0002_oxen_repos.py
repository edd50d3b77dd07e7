"""repositories: repos, their commits and files, and the jobs trained from them (Oxen.ai dialect)

Revision ID: 0002_oxen_repos
Revises: 0002_lifecycle
"""

from alembic import op
import sqlalchemy as sa


revision = "0002_oxen_repos"
down_revision = "0002_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repos",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("org_id", "namespace", "name", name="uq_repos_org_ns_name"),
    )
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repos_id"), ["id"], unique=True)
        batch_op.create_index(batch_op.f("ix_repos_org_id"), ["org_id"], unique=False)

    op.create_table(
        "repo_commits",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("repo_id", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("repo_commits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repo_commits_id"), ["id"], unique=True)
        batch_op.create_index("ix_repo_commits_repo_branch", ["repo_id", "branch"], unique=False)

    op.create_table(
        "repo_files",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("blob_key", sa.String(length=512), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("commit_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("repo_id", "branch", "path", name="uq_repo_files_branch_path"),
    )
    op.create_table(
        "repo_jobs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("job_id"),
    )
    with op.batch_alter_table("repo_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repo_jobs_repo_id"), ["repo_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("repo_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repo_jobs_repo_id"))

    op.drop_table("repo_jobs")
    op.drop_table("repo_files")
    with op.batch_alter_table("repo_commits", schema=None) as batch_op:
        batch_op.drop_index("ix_repo_commits_repo_branch")
        batch_op.drop_index(batch_op.f("ix_repo_commits_id"))

    op.drop_table("repo_commits")
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repos_org_id"))
        batch_op.drop_index(batch_op.f("ix_repos_id"))

    op.drop_table("repos")
