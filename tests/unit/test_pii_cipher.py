from __future__ import annotations

import os

import pytest

from payments.bridges.postgres.pii import PiiCipher, UndecryptableValue, key_id_of


def test_a_sealed_value_opens_to_the_original_and_does_not_contain_it():
    cipher = PiiCipher(os.urandom(32))

    sealed = cipher.seal("asha@example.com", column="customer_email")

    assert b"asha" not in sealed.ciphertext
    assert sealed.key_id == cipher.key_id
    assert cipher.open(sealed.ciphertext, key_id=sealed.key_id, column="customer_email") == "asha@example.com"


def test_the_same_value_seals_differently_each_time():
    cipher = PiiCipher(os.urandom(32))

    assert (
        cipher.seal("9999999999", column="p").ciphertext != cipher.seal("9999999999", column="p").ciphertext
    )


def test_a_ciphertext_moved_to_another_column_does_not_open():
    cipher = PiiCipher(os.urandom(32))
    sealed = cipher.seal("asha@example.com", column="customer_email")

    with pytest.raises(UndecryptableValue):
        cipher.open(sealed.ciphertext, key_id=sealed.key_id, column="customer_phone")


def test_a_tampered_ciphertext_is_refused():
    cipher = PiiCipher(os.urandom(32))
    sealed = cipher.seal("asha@example.com", column="c")
    tampered = sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])

    with pytest.raises(UndecryptableValue):
        cipher.open(tampered, key_id=sealed.key_id, column="c")


def test_rows_sealed_under_a_previous_key_still_open_after_rotation():
    old_key, new_key = os.urandom(32), os.urandom(32)
    sealed = PiiCipher(old_key).seal("9876543210", column="c")

    rotated = PiiCipher(new_key, previous_keys=(old_key,))

    assert rotated.key_id == key_id_of(new_key)
    assert rotated.open(sealed.ciphertext, key_id=sealed.key_id, column="c") == "9876543210"
    with pytest.raises(UndecryptableValue, match="no key"):
        PiiCipher(new_key).open(sealed.ciphertext, key_id=sealed.key_id, column="c")


def test_lookup_hashes_match_for_equivalent_values_only():
    cipher = PiiCipher(os.urandom(32))

    assert cipher.lookup_hash("Asha@Example.com ", kind="email") == cipher.lookup_hash(
        "asha@example.com", kind="email"
    )
    assert cipher.lookup_hash("+91 98765-43210", kind="phone") == cipher.lookup_hash(
        "+919876543210", kind="phone"
    )
    assert cipher.lookup_hash("a@example.com", kind="email") != cipher.lookup_hash(
        "b@example.com", kind="email"
    )


def test_a_key_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        PiiCipher(b"short")
