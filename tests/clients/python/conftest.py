"""Fixtures that drive the local stack through lago-python-client exactly as a user would.

The clients are built from the environment `make test` provides (LAGO_API_URL, LAGO_API_KEY,
and for further organizations LOCAL_RUNNER_BIN with the AWS emulator's settings); a missing
variable fails the test that needs it instead of skipping it. Every object a test creates gets
a unique code, so tests are independent of each other and of whatever else uses the stack.
"""

import os
import subprocess
import uuid

import pytest
from lago_python_client import Client

# What `local-runner create-organization` needs to reach the same tables as the running API.
RUNNER_ENV = ("LOCAL_RUNNER_BIN", "RESOURCE_PREFIX", "AWS_ENDPOINT_URL", "AWS_REGION")


def required_env(name):
    """The value of `name`, or a failed test saying how the suite is meant to be run."""
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(
            f"{name} is not set; run these tests through `make test`, or export LAGO_API_URL, "
            f"LAGO_API_KEY, {', '.join(RUNNER_ENV)} and the AWS credentials of a running stack",
            pytrace=False,
        )
    return value


def create_organization(name):
    """A new organization's API key, from the documented command of the local runner."""
    for variable in RUNNER_ENV:
        required_env(variable)
    completed = subprocess.run(
        [os.environ["LOCAL_RUNNER_BIN"], "create-organization", "--name", name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        pytest.fail(
            f"local-runner create-organization failed ({completed.returncode}): {completed.stderr}",
            pytrace=False,
        )
    return lines[-1].strip()


@pytest.fixture(scope="session")
def api_url():
    """Where the API runs (the SDK appends /api/v1/ itself)."""
    return required_env("LAGO_API_URL")


@pytest.fixture(scope="session")
def client(api_url):
    """The client of the organization whose key the stack was started with."""
    return Client(api_key=required_env("LAGO_API_KEY"), api_url=api_url)


@pytest.fixture(scope="session")
def other_client(api_url):
    """The client of a second organization, shared by the tenant isolation tests."""
    return Client(api_key=create_organization(f"Other {uuid.uuid4().hex[:8]}"), api_url=api_url)


@pytest.fixture
def fresh_client(api_url):
    """The client of an organization of this test's own: its lists hold exactly what the test
    created, and changing its settings cannot disturb a test running beside it."""
    return Client(api_key=create_organization(f"Fresh {uuid.uuid4().hex[:8]}"), api_url=api_url)


@pytest.fixture
def unique():
    """Makes a code no other test (or earlier run) uses: `unique("storage")` -> `storage_1a2b..`."""

    def make(prefix):
        return f"{prefix}_{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def all_pages():
    """Pages through `find_all` with `per_page`, returning every page's items and meta as the
    client returns them, one page after another while `meta.next_page` says there is one."""

    def page_through(resource_client, resource, per_page):
        pages = []
        page = 1
        while page is not None:
            response = resource_client.find_all({"page": page, "per_page": per_page})
            pages.append((response[resource], response["meta"]))
            page = response["meta"]["next_page"]
            if len(pages) > 100:
                pytest.fail(f"{resource}: next_page never became null", pytrace=False)
        return pages

    return page_through


@pytest.fixture
def expected_metas():
    """Lago's `meta` for every page of a list of `total_count` items read `per_page` at a time."""

    def metas(total_count, per_page):
        total_pages = -(-total_count // per_page)
        return [
            {
                "current_page": page,
                "next_page": page + 1 if page < total_pages else None,
                "prev_page": page - 1 if page > 1 else None,
                "total_pages": total_pages,
                "total_count": total_count,
            }
            for page in range(1, total_pages + 1)
        ]

    return metas
