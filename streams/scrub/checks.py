"""Checksums and key-name rules shared by the structured detectors and ``scrub_trace``."""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Final

_IBAN_LEN: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18,
    "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
    "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_ok(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if _IBAN_LEN.get(s[:2]) != len(s):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def shannon_bits(s: str) -> float:
    counts: dict[str, int] = {}
    for c in s:
        counts[c] = counts.get(c, 0) + 1
    n = len(s)
    return -sum(k / n * math.log2(k / n) for k in counts.values())



_SECRET_EXACT: Final = frozenset({
    "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "apikey", "authorization", "auth",
    "privatekey", "clientsecret", "accesskey", "accesstoken", "refreshtoken", "idtoken", "secretkey", "sessiontoken",
    "cookie", "setcookie", "credentials", "credential", "xapikey", "bearer", "otp", "pin", "cvv", "cvc",
})
_SECRET_SUFFIX: Final = ("password", "passwd", "secret", "token", "apikey", "privatekey", "accesskey", "secretkey",
                         "credentials", "passphrase")
# keys whose values are only secret when they look random (a "token" may be a count, a "key" a sort key)
_WEAK_SUFFIX: Final = ("token", "key")
_STRONG_SUFFIX: Final = ("apikey", "privatekey", "accesskey", "secretkey")
_KEY_NORM = re.compile(r"[^a-z0-9]")


def norm_key(key: str) -> str:
    return _KEY_NORM.sub("", key.lower())


@lru_cache(maxsize=4096)  # keys repeat across traces; caching keeps the JSON walk cheap
def is_secret_key(key: str) -> bool:
    """Keys whose values are replaced wholesale in structured data (tool args, results, metadata)."""
    k = norm_key(key)
    return k in _SECRET_EXACT or k.endswith(_SECRET_SUFFIX)


def is_weak_secret_key(key: str) -> bool:
    """In free text, a value after these keys must also look random to count as a secret."""
    k = norm_key(key)
    return k.endswith(_WEAK_SUFFIX) and not k.endswith(_STRONG_SUFFIX)


# Keys whose values are personal data whatever they look like (in tool args, results, metadata): replaced whole,
# as the kind named here. Matched on the normalised key (lower case, letters and digits only).
_KEY_KINDS: Final = {
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday", "geburtsdatum", "fechadenacimiento",
                     "datadinascita", "datedenaissance", "ngaysinh"), "DATE_OF_BIRTH"),
    **dict.fromkeys(("passport", "passportno", "passportnumber", "passportnum", "passportid", "reisepass",
                     "passeport", "pasaporte", "passaporto", "documentnumber", "documentno", "docnumber",
                     "traveldocument", "traveldocumentnumber"), "PASSPORT"),
    **dict.fromkeys(("ssn", "socialsecurity", "socialsecuritynumber", "ninumber", "nino", "nationalinsurance",
                     "nationalinsurancenumber", "ni", "nationalid", "nationalidnumber", "natid", "taxid", "tin",
                     "sin", "socialinsurancenumber", "tfn", "taxfilenumber", "ppsn", "pps", "ppsnumber", "aadhaar",
                     "aadhar", "aadhaarnumber", "uid", "pan", "pannumber", "dni", "nie", "nif", "insee", "nir",
                     "steuerid", "idnr", "steuernummer", "steueridentifikationsnummer", "codicefiscale", "cf",
                     "cccd", "cmnd", "idnumber", "idno", "idcard", "identitynumber", "identitycard",
                     "personnummer", "bsn", "pesel", "nric", "driverlicense", "driverslicense", "licensenumber",
                     "licencenumber", "drivinglicence", "drivinglicense"), "NATIONAL_ID"),
    **dict.fromkeys(("fullname", "firstname", "lastname", "surname", "givenname", "familyname", "middlename",
                     "customername", "contactname", "patientname", "holdername", "accountholder", "cardholder",
                     "cardholdername", "passengername", "recipientname", "sendername", "mothersmaidenname",
                     "maidenname", "patient", "beneficiary", "nextofkin"), "PERSON"),
    **dict.fromkeys(("homeaddress", "streetaddress", "addressline1", "addressline2", "line1", "line2",
                     "postcode", "postalcode", "zip", "zipcode", "eircode", "address"), "ADDRESS"),
}


@lru_cache(maxsize=4096)  # keys repeat across traces: one cached lookup per dict key in the JSON walk
def key_rule(key: str) -> str | None:
    """What a value under ``key`` is replaced as, whole: ``SECRET`` for secret-looking keys, the kind of a
    tell-tale key (``_KEY_KINDS``: dob, passport, ni_number, full_name, ...), or None (most keys)."""
    return "SECRET" if is_secret_key(key) else _KEY_KINDS.get(norm_key(key))
