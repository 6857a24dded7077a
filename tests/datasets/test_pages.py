"""Knowledge pages: who sees and manages what, creating, changing and deleting knowledge
bases, and the Knowledge API keys made on the page."""

import pytest

from apps.datasets.models import Dataset, DatasetPermission
from apps.datasets.services.datasets import dataset_create
from apps.tenants.models import ApiKey, ApiKeyScope, Role
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def make_dataset(team, role=Role.OWNER, **kwargs) -> Dataset:
    kwargs.setdefault("name", "Handbook")
    kwargs.setdefault("indexing_technique", "economy")
    return dataset_create(actor=team.members[role], **kwargs)


def test_an_empty_workspace_shows_the_empty_state_with_a_create_button(team):
    page = team.client().get("/knowledge/")
    assert page.status_code == 200
    assert "No knowledge bases yet" in page.content.decode()
    assert 'href="/knowledge/new/"' in page.content.decode()


def test_create_a_knowledge_base_from_the_page(team):
    response = team.client(Role.DATASET_OPERATOR).post(
        "/knowledge/new/",
        {
            "name": "Support answers",
            "description": "What customers ask",
            "permission": "all_team_members",
            "indexing_technique": "economy",
        },
    )
    dataset = Dataset.objects.for_workspace(team.workspace).get()
    assert response.status_code == 302
    assert response["Location"] == f"/knowledge/{dataset.id}/"
    assert dataset.name == "Support answers"
    assert dataset.created_by == team.members[Role.DATASET_OPERATOR].user
    assert dataset.retrieval_model["search_method"] == "full_text_search"
    listing = team.client(Role.EDITOR).get("/knowledge/").content.decode()
    assert "Support answers" in listing


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x" * 41}, "at most 40 characters"),
        ({"name": ""}, "This field is required"),
        ({"name": "Handbook"}, "already exists"),
        ({"name": "Vectors", "indexing_technique": "high_quality"}, "needs an embedding model"),
        ({"name": "Emperor", "permission": "emperor"}, "Select a valid choice"),
    ],
    ids=["too-long", "empty", "duplicate", "no-embedding-model", "bad-permission"],
)
def test_bad_input_is_a_form_error_not_a_500(team, data, message):
    make_dataset(team)
    form = {"permission": "only_me", "indexing_technique": "economy", **data}
    response = team.client().post("/knowledge/new/", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Dataset.objects.for_workspace(team.workspace).count() == 1


def test_a_normal_member_can_neither_see_nor_manage_knowledge(team):
    dataset = make_dataset(team, permission="all_team_members")
    member = team.client(Role.NORMAL)
    assert member.get("/knowledge/").status_code == 403
    assert member.post("/knowledge/new/", {"name": "Mine"}).status_code == 403
    assert member.get(f"/knowledge/{dataset.id}/settings/").status_code == 403
    assert (
        member.post(f"/knowledge/{dataset.id}/delete/", {"confirm_name": "Handbook"}).status_code
        == 403
    )
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_visibility_only_me_all_members_and_chosen_members(team):
    editor = team.members[Role.EDITOR]
    operator = team.members[Role.DATASET_OPERATOR]
    private = make_dataset(team, role=Role.EDITOR, name="Private notes")
    shared = make_dataset(team, role=Role.EDITOR, name="Team wiki", permission="all_team_members")
    chosen = make_dataset(
        team,
        role=Role.EDITOR,
        name="Board papers",
        permission=DatasetPermission.PARTIAL_MEMBERS,
        member_ids=[operator.user_id],
    )

    def visible(role):
        page = team.client(role).get("/knowledge/").content.decode()
        return {d.name for d in (private, shared, chosen) if d.name in page}

    assert visible(Role.EDITOR) == {"Private notes", "Team wiki", "Board papers"}  # creator
    assert visible(Role.OWNER) == {"Private notes", "Team wiki", "Board papers"}
    assert visible(Role.ADMIN) == {"Private notes", "Team wiki", "Board papers"}
    assert visible(Role.DATASET_OPERATOR) == {"Team wiki", "Board papers"}
    assert editor.user_id != operator.user_id
    # A hidden knowledge base is not found by id either.
    assert team.client(Role.DATASET_OPERATOR).get(f"/knowledge/{private.id}/").status_code == 404
    assert team.client(Role.DATASET_OPERATOR).get(f"/knowledge/{chosen.id}/").status_code == 200


def test_settings_change_visibility_members_and_retrieval(team):
    dataset = make_dataset(team)
    operator = team.members[Role.DATASET_OPERATOR]
    response = team.client().post(
        f"/knowledge/{dataset.id}/settings/",
        {
            "name": "Handbook 2",
            "description": "",
            "permission": "partial_members",
            "members": [str(operator.user_id)],
            "indexing_technique": "economy",
            "search_method": "full_text_search",
            "top_k": "6",
            "score_threshold": "0.3",
            "score_threshold_enabled": "on",
            "mode": "custom",
            "separator": "\\n",
            "max_tokens": "300",
            "chunk_overlap": "20",
            "remove_extra_spaces": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    dataset.refresh_from_db()
    assert dataset.name == "Handbook 2"
    assert list(dataset.members.all()) == [operator.user]
    assert dataset.retrieval_model["top_k"] == 6
    assert dataset.retrieval_model["score_threshold_enabled"] is True
    assert dataset.process_rule["mode"] == "custom"
    assert dataset.process_rule["rules"]["segmentation"]["max_tokens"] == 300
    assert team.client(Role.DATASET_OPERATOR).get(f"/knowledge/{dataset.id}/").status_code == 200


def test_economy_cannot_use_semantic_search(team):
    dataset = make_dataset(team)
    response = team.client().post(
        f"/knowledge/{dataset.id}/settings/",
        {
            "name": "Handbook",
            "permission": "only_me",
            "indexing_technique": "economy",
            "search_method": "semantic_search",
            "top_k": "4",
            "mode": "automatic",
        },
    )
    assert response.status_code == 400
    assert "Economy knowledge bases have no embeddings" in response.content.decode()


def test_delete_needs_the_exact_name(team):
    dataset = make_dataset(team)
    owner = team.client()
    wrong = owner.post(
        f"/knowledge/{dataset.id}/delete/", {"confirm_name": "handbook"}, follow=True
    )
    assert "Type the knowledge base" in wrong.content.decode()
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    right = owner.post(f"/knowledge/{dataset.id}/delete/", {"confirm_name": "Handbook"})
    assert right.status_code == 302 and right["Location"] == "/knowledge/"
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_search_and_pagination_of_the_list(team):
    for n in range(30):
        make_dataset(team, name=f"Base {n:02d}")
    owner = team.client()
    first = owner.get("/knowledge/").content.decode()
    assert "Page 1 of 2" in first
    second = owner.get("/knowledge/?page=2").content.decode()
    assert "Base 00" in second and "Base 29" not in second
    found = owner.get("/knowledge/?q=base 1").content.decode()
    assert "Base 12" in found and "Base 22" not in found


def test_knowledge_api_keys_are_shown_once_and_can_be_revoked(team):
    owner = team.client()
    created = owner.post("/knowledge/api-keys/", {"name": "ingest script"})
    assert created.status_code == 201
    key = ApiKey.objects.for_workspace(team.workspace).get()
    assert key.scope == ApiKeyScope.DATASET
    raw = created.context["new_key"]
    assert raw in created.content.decode()
    assert raw not in owner.get("/knowledge/api-keys/").content.decode()
    assert owner.post(f"/knowledge/api-keys/{key.id}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert team.client(Role.DATASET_OPERATOR).get("/knowledge/api-keys/").status_code == 403


def test_another_workspace_gets_404_on_every_page(team, other_team):
    dataset = make_dataset(team)
    outsider = client_for(other_team.owner)
    for path in (
        f"/knowledge/{dataset.id}/",
        f"/knowledge/{dataset.id}/settings/",
        f"/knowledge/{dataset.id}/hit-testing/",
        f"/knowledge/{dataset.id}/documents/new/",
    ):
        assert outsider.get(path).status_code == 404, path
    assert "Handbook" not in outsider.get("/knowledge/").content.decode()
