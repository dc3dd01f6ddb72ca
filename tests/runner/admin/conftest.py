import pytest


@pytest.fixture
def sorted_by_header(admin_client):
    """sorted_by_header(url, "Queued at"): the primary keys of a changelist's rows after clicking
    that column's header once (ascending, unless it already sorted so), as a user would."""
    from django.contrib.admin.templatetags.admin_list import result_headers

    def rows(url, header):
        cl = admin_client.get(url).context["cl"]
        links = {str(h["text"]): h["url_primary"] for h in result_headers(cl) if h["sortable"]}
        return [row.pk for row in admin_client.get(url + links[header]).context["cl"].result_list]

    return rows
