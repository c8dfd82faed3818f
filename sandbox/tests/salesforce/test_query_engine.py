"""The query engine on an in-memory SQLite store built from a small schema."""

import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesforce_appcues_sandbox.salesforce.ids import checksum
from salesforce_appcues_sandbox.salesforce.query_engine import QueryEngine
from salesforce_appcues_sandbox.salesforce.schema import FieldDef, ObjectDef, Schema
from salesforce_appcues_sandbox.salesforce.soql import SoqlError

V = "61.0"


def _id(prefix, n):
    body = f"{prefix}5g{n:010d}"
    return body + checksum(body)


def _system():
    return [
        FieldDef("Id", "id"),
        FieldDef("IsDeleted", "boolean"),
        FieldDef("SystemModstamp", "datetime"),
    ]


def _address(prefix, compound):
    return [
        FieldDef(f"{prefix}Street", "textarea", compound_field_name=compound),
        FieldDef(f"{prefix}City", "string", compound_field_name=compound),
        FieldDef(f"{prefix}State", "string", compound_field_name=compound),
        FieldDef(f"{prefix}PostalCode", "string", compound_field_name=compound),
        FieldDef(f"{prefix}Country", "string", compound_field_name=compound),
        FieldDef(f"{prefix}Latitude", "double", compound_field_name=compound),
        FieldDef(f"{prefix}Longitude", "double", compound_field_name=compound),
        FieldDef(f"{prefix}GeocodeAccuracy", "picklist", compound_field_name=compound),
        FieldDef(compound, "address", filterable=False, sortable=False),
    ]


def _obj(name, prefix, fields, **kw):
    return ObjectDef(name, name, name + "s", prefix, fields={f.name: f for f in fields}, **kw)


def build_schema():
    user = _obj("User", "005", [*_system(), FieldDef("Name", "string")])
    account = _obj(
        "Account",
        "001",
        [
            *_system(),
            FieldDef("Name", "string"),
            FieldDef("OwnerId", "reference", reference_to=("User",), relationship_name="Owner"),
            FieldDef("Product_Account_Id__c", "string", custom=True),
            FieldDef("NumberOfEmployees", "int"),
            FieldDef("AnnualRevenue", "currency", scale=2),
            FieldDef("Secret__c", "string", readable_by_user=False),
            *_address("Billing", "BillingAddress"),
        ],
    )
    contact = _obj(
        "Contact",
        "003",
        [
            *_system(),
            FieldDef("FirstName", "string"),
            FieldDef("LastName", "string"),
            FieldDef("Email", "email"),
            FieldDef(
                "AccountId", "reference", reference_to=("Account",), relationship_name="Account"
            ),
            FieldDef("Birthdate", "date"),
            FieldDef("HasOptedOutOfEmail", "boolean"),
            FieldDef("Appcues_NPS_Score__c", "double", custom=True),
            FieldDef("Description", "textarea", filterable=False, sortable=False),
            *_address("Mailing", "MailingAddress"),
        ],
    )
    hidden = _obj("Hidden__c", "a01", _system(), readable=False)
    return Schema({o.name: o for o in (user, account, contact, hidden)})


def make_db(schema):
    conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    for obj in schema.objects.values():
        cols = ", ".join(f'"{f.name}" {f.sql_type}' for f in obj.stored_fields())
        conn.execute(f'CREATE TABLE "{obj.name}" ({cols})')
    return conn


def insert(conn, table, **values):
    cols = ", ".join(f'"{k}"' for k in values)
    marks = ", ".join("?" for _ in values)
    conn.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', list(values.values()))


@pytest.fixture
def store():
    schema = build_schema()
    conn = make_db(schema)
    owner = _id("005", 1)
    insert(conn, "User", Id=owner, IsDeleted=0, Name="Olga Owner")
    acc1, acc2 = _id("001", 1), _id("001", 2)
    insert(
        conn,
        "Account",
        Id=acc1,
        IsDeleted=0,
        Name="Acme",
        OwnerId=owner,
        Product_Account_Id__c="acct_1",
        NumberOfEmployees=50,
        AnnualRevenue=1000.5,
        Secret__c="s",
        BillingStreet="1 Main St\nSuite 2",
        BillingCity="Springfield",
        BillingPostalCode="12345",
        BillingLatitude=1.5,
        SystemModstamp="2024-01-01T00:00:00.000Z",
    )
    insert(
        conn,
        "Account",
        Id=acc2,
        IsDeleted=0,
        Name="Bare",
        SystemModstamp="2024-01-01T00:00:00.000Z",
    )
    rows = [
        # n, first, last, email, account, modstamp, deleted, opted out, nps, birthdate
        (1, "Ann", "Avery", "ann@x.com", acc1, "2024-01-01T00:00:00.000Z", 0, 0, 9.0, "1990-05-01"),
        (2, "bob", "Baker", "bob@x.com", acc1, "2024-01-02T00:00:00.000Z", 0, 1, None, None),
        (3, None, "Cole", None, None, "2024-01-02T00:00:00.000Z", 0, 0, 3.0, "2001-01-01"),
        (4, "Dee", "Drew", "dee@x.com", acc2, "2024-01-03T12:30:00.000Z", 1, 0, 10.0, None),
        (5, "Eve", "O'Hara", "eve_1%@x.com", None, "2024-01-04T00:00:00.000Z", 0, 0, None, None),
    ]
    for n, first, last, email, acc, stamp, deleted, opted, nps, birth in rows:
        insert(
            conn,
            "Contact",
            Id=_id("003", n),
            FirstName=first,
            LastName=last,
            Email=email,
            AccountId=acc,
            SystemModstamp=stamp,
            IsDeleted=deleted,
            HasOptedOutOfEmail=opted,
            Appcues_NPS_Score__c=nps,
            Birthdate=birth,
            Description="long text",
        )
    engine = QueryEngine(conn, threading.RLock(), schema)
    return engine, conn


def ids(page):
    return [int(r["Id"][5:15]) for r in page.records]


def run(engine, soql, include_deleted=False, **kw):
    return engine.run(soql, include_deleted=include_deleted, api_version=V, **kw)


def test_record_shape_with_relationship_and_types(store):
    engine, _ = store
    page = run(
        engine,
        "SELECT Id, FirstName, Account.Name, Account.Owner.Name, HasOptedOutOfEmail, "
        "Appcues_NPS_Score__c, SystemModstamp, Birthdate FROM Contact WHERE Id = '"
        + _id("003", 1)
        + "'",
    )
    assert (page.total_size, page.done, page.next_locator) == (1, True, None)
    (rec,) = page.records
    cid, aid, uid = _id("003", 1), _id("001", 1), _id("005", 1)
    assert rec == {
        "attributes": {"type": "Contact", "url": f"/services/data/v61.0/sobjects/Contact/{cid}"},
        "Id": cid,
        "FirstName": "Ann",
        "Account": {
            "attributes": {
                "type": "Account",
                "url": f"/services/data/v61.0/sobjects/Account/{aid}",
            },
            "Name": "Acme",
            "Owner": {
                "attributes": {"type": "User", "url": f"/services/data/v61.0/sobjects/User/{uid}"},
                "Name": "Olga Owner",
            },
        },
        "HasOptedOutOfEmail": False,
        "Appcues_NPS_Score__c": 9.0,
        "SystemModstamp": "2024-01-01T00:00:00.000+0000",
        "Birthdate": "1990-05-01",
    }
    assert list(rec) == [
        "attributes",
        "Id",
        "FirstName",
        "Account",
        "HasOptedOutOfEmail",
        "Appcues_NPS_Score__c",
        "SystemModstamp",
        "Birthdate",
    ]


def test_null_parent_is_null_and_missing_grandparent_too(store):
    engine, _ = store
    page = run(engine, "select id, account.owner.name from contact where lastname = 'cole'")
    assert page.records[0]["Account"] is None
    page = run(engine, "SELECT Account.Owner.Name FROM Contact WHERE LastName = 'Drew'", True)
    assert page.records[0]["Account"]["Owner"] is None


def test_canonical_names_in_records(store):
    engine, _ = store
    rec = run(engine, "SELECT fIrStNaMe FROM CONTACT WHERE LastName = 'Avery'").records[0]
    assert rec["attributes"]["type"] == "Contact"
    assert rec["FirstName"] == "Ann"


def test_compound_address_and_numbers(store):
    engine, _ = store
    page = run(
        engine,
        "SELECT Name, BillingAddress, NumberOfEmployees, AnnualRevenue FROM Account ORDER BY Name",
    )
    acme, bare = page.records
    assert acme["BillingAddress"] == {
        "city": "Springfield",
        "country": None,
        "geocodeAccuracy": None,
        "latitude": 1.5,
        "longitude": None,
        "postalCode": "12345",
        "state": None,
        "street": "1 Main St\nSuite 2",
    }
    assert acme["NumberOfEmployees"] == 50
    assert isinstance(acme["NumberOfEmployees"], int)
    assert acme["AnnualRevenue"] == 1000.5
    assert bare["BillingAddress"] is None
    assert bare["NumberOfEmployees"] is None


def test_query_hides_deleted_and_query_all_shows_them(store):
    engine, _ = store
    assert ids(run(engine, "SELECT Id FROM Contact")) == [1, 2, 3, 5]
    assert ids(run(engine, "SELECT Id FROM Contact", include_deleted=True)) == [1, 2, 3, 4, 5]
    page = run(engine, "SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true", True)
    assert [r["IsDeleted"] for r in page.records] == [True]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("SystemModstamp >= 2024-01-02T00:00:00Z", [2, 3, 4, 5]),
        ("SystemModstamp >= 2024-01-02T00:00:00.000Z", [2, 3, 4, 5]),
        ("SystemModstamp >= 2024-01-02T00:00:00.000000Z", [2, 3, 4, 5]),
        ("SystemModstamp >= 2024-01-02T00:00:00+00:00", [2, 3, 4, 5]),
        ("SystemModstamp >= 2024-01-02T00:00:00.000+00:00", [2, 3, 4, 5]),
        ("SystemModstamp >= 2024-01-01T16:00:00-08:00", [2, 3, 4, 5]),
        ("SystemModstamp > 2024-01-02T00:00:00Z", [4, 5]),
        # a sub-millisecond literal: the record at .000 is before it
        ("SystemModstamp >= 2024-01-02T00:00:00.000001Z", [4, 5]),
        ("SystemModstamp > 2024-01-01T23:59:59.999999Z", [2, 3, 4, 5]),
        ("SystemModstamp <= 2024-01-02T00:00:00.000001Z", [1, 2, 3]),
        ("SystemModstamp < 2024-01-02T00:00:00.000001Z", [1, 2, 3]),
        ("SystemModstamp = 2024-01-02T00:00:00.000001Z", []),
        ("SystemModstamp = 2024-01-03T04:30:00-08:00", [4]),
        ("SystemModstamp != 2024-01-02T00:00:00Z", [1, 4, 5]),
        ("SystemModstamp IN (2024-01-01T00:00:00Z, 2024-01-04T00:00:00.000Z)", [1, 5]),
        ("Birthdate > 2000-01-01", [3]),
        ("Birthdate = null", [2, 4, 5]),
        ("Birthdate != null", [1, 3]),
        ("HasOptedOutOfEmail = true", [2]),
        ("HasOptedOutOfEmail = false", [1, 3, 4, 5]),
        ("Appcues_NPS_Score__c >= 9", [1, 4]),
        ("Appcues_NPS_Score__c < 9.5", [1, 3]),
        ("Appcues_NPS_Score__c != 9", [2, 3, 4, 5]),  # nulls are "not 9"
        ("Appcues_NPS_Score__c IN (3, 10)", [3, 4]),
        ("Appcues_NPS_Score__c NOT IN (3, 10)", [1, 2, 5]),
        ("FirstName = 'BOB'", [2]),  # text compares case-insensitively
        ("FirstName != 'bob'", [1, 3, 4, 5]),
        ("FirstName = null", [3]),
        ("FirstName IN ('ann', 'DEE', null)", [1, 3, 4]),
        ("FirstName NOT IN ('ann', 'dee')", [2, 3, 5]),
        ("FirstName NOT IN ('ann', null)", [2, 4, 5]),
        ("LastName LIKE 'a%'", [1]),
        ("LastName LIKE '_r_w'", [4]),
        ("Email LIKE 'eve\\_1\\%%'", [5]),
        ("Email LIKE 'eve_1%'", [5]),
        ("Email LIKE '%x.com'", [1, 2, 4, 5]),
        ("LastName = 'O\\'Hara'", [5]),
        ("NOT FirstName = 'Ann'", [2, 3, 4, 5]),
        ("NOT (FirstName = 'Ann' OR LastName = 'Cole')", [2, 4, 5]),
        ("NOT FirstName IN ('Ann', 'bob')", [3, 4, 5]),
        ("NOT FirstName LIKE 'A%'", [2, 3, 4, 5]),
        ("NOT Appcues_NPS_Score__c > 5", [2, 3, 5]),
        ("(FirstName = 'Ann' OR LastName = 'Cole') AND Birthdate > 1995-01-01", [3]),
        ("Account.Name = 'acme'", [1, 2]),
        ("Account.Owner.Name LIKE 'Olga%'", [1, 2]),
        ("Account.Product_Account_Id__c = null", [3, 4, 5]),
        ("AccountId = null", [3, 5]),
        ("Id IN ('" + _id("003", 2) + "', '" + _id("003", 5)[:15] + "')", [2, 5]),
        ("Id = '" + _id("003", 3)[:15] + "'", [3]),
    ],
)
def test_filters(store, where, expected):
    engine, _ = store
    page = run(engine, f"SELECT Id FROM Contact WHERE {where} ORDER BY Id", include_deleted=True)
    assert ids(page) == expected
    assert page.total_size == len(expected)


@pytest.mark.parametrize(
    "attack",
    [
        "x' OR '1'='1",
        "x\\' OR \\'1\\'=\\'1",
        "Ann'; DROP TABLE Contact; --",
        "Ann\\'; DROP TABLE Contact; --",
        '" OR 1=1 --',
        "%",
    ],
)
def test_injection_attempts_match_only_exactly(store, attack):
    engine, conn = store
    from salesforce_appcues_sandbox.salesforce.soql import encode_string

    soql = f"SELECT Id FROM Contact WHERE FirstName = {encode_string(attack)}"
    assert run(engine, soql).records == []
    insert(conn, "Contact", Id=_id("003", 99), IsDeleted=0, FirstName=attack)
    assert ids(run(engine, soql)) == [99]
    assert run(engine, "SELECT COUNT() FROM Contact").total_size == 5


def test_raw_injection_text_is_refused_or_harmless(store):
    engine, _ = store
    for soql in [
        "SELECT Id FROM Contact WHERE FirstName = 'x' OR '1'='1'",
        "SELECT Id FROM Contact WHERE FirstName = 'x'; DROP TABLE Contact",
        'SELECT Id FROM Contact WHERE FirstName = "x" OR 1=1',
    ]:
        with pytest.raises(SoqlError):
            run(engine, soql)
    assert run(engine, "SELECT COUNT() FROM Contact").total_size == 4


def test_order_by_nulls_and_direction(store):
    engine, _ = store
    q = "SELECT Id FROM Contact ORDER BY "
    assert ids(run(engine, q + "FirstName", True)) == [3, 1, 2, 4, 5]  # nulls first, no case
    assert ids(run(engine, q + "FirstName NULLS LAST", True)) == [1, 2, 4, 5, 3]
    assert ids(run(engine, q + "FirstName DESC", True)) == [5, 4, 2, 1, 3]
    assert ids(run(engine, q + "FirstName DESC NULLS FIRST", True)) == [3, 5, 4, 2, 1]
    assert ids(run(engine, q + "SystemModstamp DESC, LastName ASC", True)) == [5, 4, 2, 3, 1]
    assert ids(run(engine, q + "Account.Name DESC NULLS LAST, Id", True)) == [4, 1, 2, 3, 5]
    assert ids(run(engine, q + "Id LIMIT 2 OFFSET 1", True)) == [2, 3]
    assert ids(run(engine, q + "Id DESC LIMIT 2", True)) == [5, 4]


def test_count(store):
    engine, _ = store
    page = run(engine, "SELECT COUNT() FROM Contact WHERE FirstName != null")
    assert (page.total_size, page.done, page.records) == (3, True, [])
    assert run(engine, "SELECT COUNT() FROM Contact", include_deleted=True).total_size == 5
    page = run(engine, "SELECT COUNT(FirstName) FROM Contact")
    assert page.total_size == 1
    assert page.records == [{"attributes": {"type": "AggregateResult"}, "expr0": 3}]


def err(engine, soql):
    with pytest.raises(SoqlError) as caught:
        run(engine, soql)
    assert caught.value.status == 400
    return caught.value


def test_offset_is_bounded(store):
    engine, _ = store
    assert run(engine, "SELECT Id FROM Contact LIMIT 5 OFFSET 2000").records == []
    e = err(engine, "SELECT Id FROM Contact LIMIT 5 OFFSET 2001")
    assert e.error_code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_unknown_and_unreadable_fields_are_invalid_field(store):
    engine, _ = store
    e = err(engine, "SELECT Id, Foo FROM Contact")
    assert e.error_code == "INVALID_FIELD"
    assert e.message == (
        "\nSELECT Id, Foo FROM Contact\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo' on entity 'Contact'. If you are attempting to use a custom field, "
        "be sure to append the '__c' after the custom field name. Please reference your WSDL or "
        "the describe call for the appropriate names."
    )
    e = err(engine, "SELECT Secret__c FROM Account")
    assert e.error_code == "INVALID_FIELD"
    assert "No such column 'Secret__c' on entity 'Account'" in e.message
    e = err(engine, "SELECT Account.Secret__c FROM Contact")
    assert "No such column 'Secret__c' on entity 'Account'" in e.message
    e = err(engine, "SELECT Id FROM Contact WHERE Bogus__c = 'x'")
    assert "No such column 'Bogus__c'" in e.message
    e = err(engine, "SELECT Id FROM Contact ORDER BY Bogus__c")
    assert "No such column 'Bogus__c'" in e.message


def test_unknown_relationship(store):
    engine, _ = store
    e = err(engine, "SELECT Acount.Name FROM Contact")
    assert e.error_code == "INVALID_FIELD"
    assert "Didn't understand relationship 'Acount' in field path" in e.message


def test_unknown_and_unreadable_objects_are_invalid_type(store):
    engine, _ = store
    for name in ("Foo__c", "Hidden__c"):
        e = err(engine, f"SELECT Id FROM {name}")
        assert e.error_code == "INVALID_TYPE"
        assert f"sObject type '{name}' is not supported." in e.message


@pytest.mark.parametrize(
    ("where", "code", "text"),
    [
        (
            "SystemModstamp >= '2024-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "value of filter criterion for field 'SystemModstamp' must be of type dateTime "
            "and should not be enclosed in quotes",
        ),
        ("SystemModstamp >= 2024-01-01", "INVALID_FIELD", "must be of type dateTime"),
        ("Birthdate > 2024-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date "),
        ("HasOptedOutOfEmail = 'true'", "INVALID_FIELD", "must be of type boolean"),
        ("Appcues_NPS_Score__c = '9'", "INVALID_FIELD", "must be of type double"),
        (
            "FirstName = 5",
            "INVALID_FIELD",
            "must be of type string and should be enclosed in quotes",
        ),
        ("Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
        ("Description = 'x'", "INVALID_FIELD", "field 'Description' can not be filtered"),
        ("MailingAddress = 'x'", "INVALID_FIELD", "can not be filtered"),
        ("FirstName < null", "INVALID_QUERY_FILTER_OPERATOR", "null"),
        ("HasOptedOutOfEmail > false", "INVALID_QUERY_FILTER_OPERATOR", "boolean"),
        ("Appcues_NPS_Score__c LIKE '9%'", "INVALID_QUERY_FILTER_OPERATOR", "LIKE"),
        ("FirstName = 'a\\_b'", "MALFORMED_QUERY", "Illegal character sequence '\\_'"),
    ],
)
def test_type_errors(store, where, code, text):
    engine, _ = store
    e = err(engine, f"SELECT Id FROM Contact WHERE {where}")
    assert e.error_code == code
    assert text in e.message


def test_paging_across_2000_record_boundaries():
    schema = build_schema()
    conn = make_db(schema)
    conn.executemany(
        'INSERT INTO "Contact" ("Id", "IsDeleted", "LastName", "SystemModstamp") VALUES (?,?,?,?)',
        [
            (_id("003", n), int(n % 10 == 0), f"L{n:05d}", f"2024-01-01T00:00:{n % 60:02d}.000Z")
            for n in range(1, 5002)
        ],
    )
    engine = QueryEngine(conn, threading.RLock(), schema)
    soql = "SELECT Id, LastName FROM Contact ORDER BY SystemModstamp, Id"
    page = run(engine, soql, include_deleted=True)
    assert (page.total_size, page.done, len(page.records)) == (5001, False, 2000)
    locator = page.next_locator
    assert locator.startswith("01g")
    assert locator.endswith("-2000")
    assert len(locator.split("-")[0]) == 18
    seen = [r["Id"] for r in page.records]
    # the snapshot is stable: rows written after the first page do not appear
    insert(
        conn, "Contact", Id=_id("003", 9999), IsDeleted=0, SystemModstamp="2000-01-01T00:00:00.000Z"
    )
    pages = 1
    while not page.done:
        page = engine.next_page(page.next_locator, api_version=V)
        seen += [r["Id"] for r in page.records]
        pages += 1
        assert page.total_size == 5001
    assert pages == 3
    assert page.next_locator is None
    assert len(seen) == len(set(seen)) == 5001
    expected = sorted(
        (f"2024-01-01T00:00:{n % 60:02d}.000Z", _id("003", n)) for n in range(1, 5002)
    )
    assert seen == [i for _, i in expected]
    # smaller batches, hidden deleted rows
    page = run(engine, soql, batch_size=500)
    assert (page.total_size, len(page.records)) == (4502, 500)
    assert page.next_locator.endswith("-500")
    # a client may jump to any offset of a live cursor
    jump = engine.next_page(page.next_locator.split("-")[0] + "-4501", api_version=V)
    assert (jump.done, len(jump.records)) == (True, 1)


def test_unknown_locator(store):
    engine, _ = store
    with pytest.raises(SoqlError) as caught:
        engine.next_page("01g5g0000000zzzAAA-2000", api_version=V)
    assert caught.value.error_code == "INVALID_QUERY_LOCATOR"


def test_finished_cursor_is_gone():
    schema = build_schema()
    conn = make_db(schema)
    conn.executemany(
        'INSERT INTO "Contact" ("Id", "IsDeleted") VALUES (?, 0)',
        [(_id("003", n),) for n in range(1, 402)],
    )
    engine = QueryEngine(conn, threading.RLock(), schema)
    page = run(engine, "SELECT Id FROM Contact", batch_size=200)
    locator = page.next_locator
    while not page.done:
        page = engine.next_page(page.next_locator, api_version=V)
    with pytest.raises(SoqlError):
        engine.next_page(locator, api_version=V)
    temp = conn.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0]
    assert temp == 0


def test_csv_rows(store):
    engine, _ = store
    header, rows = engine.iter_csv(
        "SELECT Id, FirstName, Account.Name, Account.Owner.Name, HasOptedOutOfEmail, "
        "Appcues_NPS_Score__c, SystemModstamp, Birthdate FROM Contact ORDER BY Id",
        include_deleted=True,
    )
    assert header == [
        "Id",
        "FirstName",
        "Account.Name",
        "Account.Owner.Name",
        "HasOptedOutOfEmail",
        "Appcues_NPS_Score__c",
        "SystemModstamp",
        "Birthdate",
    ]
    rows = list(rows)
    assert rows[0] == [
        _id("003", 1),
        "Ann",
        "Acme",
        "Olga Owner",
        "false",
        "9",
        "2024-01-01T00:00:00.000Z",
        "1990-05-01",
    ]
    assert rows[2] == [
        _id("003", 3),
        "",
        "",
        "",
        "false",
        "3",
        "2024-01-02T00:00:00.000Z",
        "2001-01-01",
    ]
    assert len(rows) == 5
    header, rows = engine.iter_csv(
        "SELECT AnnualRevenue FROM Account ORDER BY Name", include_deleted=False
    )
    assert list(rows) == [["1000.5"], [""]]


def test_csv_refuses_what_bulk_refuses(store):
    engine, _ = store
    with pytest.raises(SoqlError) as caught:
        engine.iter_csv("SELECT Id, MailingAddress FROM Contact", include_deleted=False)
    assert caught.value.message == "Selecting compound data not supported in Bulk Query"
    for soql in ("SELECT COUNT() FROM Contact", "SELECT Id FROM Contact LIMIT 1 OFFSET 1"):
        with pytest.raises(SoqlError):
            engine.iter_csv(soql, include_deleted=False)
    with pytest.raises(SoqlError) as caught:
        engine.iter_csv("SELECT Nope FROM Contact", include_deleted=False)
    assert caught.value.error_code == "INVALID_FIELD"


_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _oracle(value, op, literal):
    """SOQL's two-valued comparison: a null equals nothing and differs from everything."""
    if value is None:
        return op == "!="
    return _OPS[op](value, literal)


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=1, max_size=10),
    texts=st.lists(st.sampled_from([None, "a", "A", "b", "B", "ab"]), min_size=10, max_size=10),
    op=st.sampled_from(sorted(_OPS)),
    number=st.integers(-3, 3),
    text=st.sampled_from(["a", "B", "ab"]),
    negate=st.booleans(),
    conjunction=st.sampled_from(["AND", "OR"]),
)
def test_filters_match_a_python_oracle(values, texts, op, number, text, negate, conjunction):
    schema = build_schema()
    conn = make_db(schema)
    for n, (value, name) in enumerate(zip(values, texts, strict=False), start=1):
        insert(
            conn,
            "Contact",
            Id=_id("003", n),
            IsDeleted=0,
            Appcues_NPS_Score__c=value,
            FirstName=name,
        )
    engine = QueryEngine(conn, threading.RLock(), schema)
    where = f"Appcues_NPS_Score__c {op} {number} {conjunction} FirstName {op} '{text}'"
    if negate:
        where = f"NOT ({where})"
    got = ids(run(engine, f"SELECT Id FROM Contact WHERE {where} ORDER BY Id"))
    expected = []
    for n, (value, name) in enumerate(zip(values, texts, strict=False), start=1):
        left = _oracle(value, op, number)
        right = _oracle(None if name is None else name.lower(), op, text.lower())
        match = (left and right) if conjunction == "AND" else (left or right)
        if match != negate:
            expected.append(n)
    assert got == expected


def test_sixty_open_cursors_all_stay_usable():
    """Since v56.0 Salesforce has no limit on open cursors (it was 10 per user, the sandbox
    kept 50): a reader may come back to the first of many."""
    schema = build_schema()
    conn = make_db(schema)
    conn.executemany(
        'INSERT INTO "Contact" ("Id", "IsDeleted") VALUES (?, 0)',
        [(_id("003", n),) for n in range(1, 402)],
    )
    engine = QueryEngine(conn, threading.RLock(), schema)
    locators = [
        run(engine, "SELECT Id FROM Contact", batch_size=200).next_locator for _ in range(60)
    ]
    for locator in locators:
        assert len(engine.next_page(locator, api_version=V).records) == 200
