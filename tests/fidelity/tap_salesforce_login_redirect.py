"""Runs singer-io tap-salesforce with its hard-coded login host pointed at the sandbox.

The tap posts to https://login.salesforce.com/services/oauth2/token (or test.salesforce.com)
with no setting to change it; everything after login uses the token's instance_url. This
wrapper rewrites only that prefix (to $SANDBOX_SALESFORCE_LOGIN_URL); nothing else of the tap
changes. Run with the tap's own interpreter: `python tap_salesforce_login_redirect.py ARGS`.
"""

import os
import sys

from tap_salesforce import main
from tap_salesforce.salesforce import Salesforce

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
    sys.exit(main())
