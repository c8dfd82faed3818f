"""Runs Airbyte's source-salesforce with its hard-coded login host pointed at the sandbox.

The source posts its refresh-token grant to https://login.salesforce.com/services/oauth2/token
(or test.salesforce.com when `is_sandbox`) with no setting to change it; everything after
login uses the token's instance_url. This wrapper rewrites only that prefix (to
$SANDBOX_SALESFORCE_LOGIN_URL); nothing else of the source changes. Run with the source's own
interpreter: `python airbyte_source_salesforce_login_redirect.py check --config ...`.
"""

import os

from source_salesforce.api import Salesforce
from source_salesforce.run import run

_LOGIN_HOSTS = ("https://login.salesforce.com/", "https://test.salesforce.com/")
_TARGET = os.environ["SANDBOX_SALESFORCE_LOGIN_URL"].rstrip("/") + "/"
_make_request = Salesforce._make_request


def _redirected(self, http_method, url, *args, **kwargs):
    for host in _LOGIN_HOSTS:
        if url.startswith(host):
            url = _TARGET + url[len(host) :]
    return _make_request(self, http_method, url, *args, **kwargs)


Salesforce._make_request = _redirected

if __name__ == "__main__":
    run()
