"""Reading a Bulk 2.0 CSV answer: a byte-order mark is not part of the first column's name."""

import io

import requests
import urllib3

from salesforce_appcues_clients.salesforce_bulk_query import csv_rows


def _response(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.raw = urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False)
    return response


def test_a_leading_byte_order_mark_is_dropped():
    body = '\ufeff"sf__Id","sf__Created",Name\r\n001000000000001AAA,true,"Zoë, ""Z"""\r\n'
    rows = list(csv_rows(_response(body.encode("utf-8"))))
    assert rows == [{"sf__Id": "001000000000001AAA", "sf__Created": "true", "Name": 'Zoë, "Z"'}]


def test_without_a_byte_order_mark_the_rows_are_the_same():
    body = "sf__Id,Name\n001000000000001AAA,A\n\n"
    assert list(csv_rows(_response(body.encode("utf-8")))) == [
        {"sf__Id": "001000000000001AAA", "Name": "A"}
    ]
