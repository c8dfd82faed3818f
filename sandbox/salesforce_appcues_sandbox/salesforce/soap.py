"""SOAP `login()` (partner API), as simple-salesforce's SalesforceLogin sends it.

Only login: the sessionId it returns is an ordinary access token for the REST API.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

_PARTNER = "{urn:partner.soap.sforce.com}"


class SoapLoginRequest:
    def __init__(self, username: str, password: str, organization_id: str | None) -> None:
        self.username = username
        self.password = password
        self.organization_id = organization_id


def parse_login(body: bytes) -> SoapLoginRequest | None:
    """The credentials in a login envelope; None if it is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    login = root.find(f".//{_PARTNER}login")
    if login is None:
        return None
    username = login.findtext(f"{_PARTNER}username") or ""
    password = login.findtext(f"{_PARTNER}password") or ""
    org = root.findtext(f".//{_PARTNER}organizationId")
    return SoapLoginRequest(username.strip(), password, org.strip() if org else None)


def login_response(
    base_url: str,
    version: str,
    session_id: str,
    org_id: str,
    user_id: str,
    username: str,
    seconds_valid: int,
) -> str:
    # The result elements are unprefixed (default namespace): clients look them up by bare
    # tag name (`sessionId`, `serverUrl`).
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{base_url}/services/Soap/m/{version}/{org_id}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{base_url}/services/Soap/u/{version}/{org_id}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId><userId>{user_id}</userId>"
        "<userInfo><accessibilityMode>false</accessibilityMode>"
        "<currencySymbol>$</currencySymbol><orgDefaultCurrencyIsoCode>USD"
        "</orgDefaultCurrencyIsoCode><organizationId>"
        f"{org_id}</organizationId><organizationMultiCurrency>false"
        "</organizationMultiCurrency><organizationName>Sandbox Org</organizationName>"
        f"<sessionSecondsValid>{seconds_valid}</sessionSecondsValid>"
        f"<userEmail>{escape(username)}</userEmail><userFullName>Integration User"
        f"</userFullName><userId>{user_id}</userId><userLanguage>en_US</userLanguage>"
        f"<userLocale>en_US</userLocale><userName>{escape(username)}</userName>"
        "<userTimeZone>GMT</userTimeZone><userType>Standard</userType></userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def fault(code: str, message: str) -> str:
    """A login fault; clients read `sf:exceptionCode` / `sf:exceptionMessage` (prefix `sf`)."""
    text = escape(message)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode>"
        f"<faultstring>{text}</faultstring><detail>"
        '<sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{text}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
