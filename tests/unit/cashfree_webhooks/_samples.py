"""Webhook bodies written from FACTS §7 for the event families and versions the vectors do not cover.

Amounts are written as Cashfree writes them (``170.00``), ids sometimes as JSON numbers, and
``null`` where Cashfree's samples put it, so the lenient models meet what the wire really carries.
The documented 2025-01-01 payment and refund samples are the ``.body`` files of the shared vectors.
"""

from __future__ import annotations

PAYMENT_FAILED_2023 = b"""{
 "data": {
  "order": {"order_id": "order_1001", "order_amount": 170.00, "order_currency": "INR", "order_tags": null},
  "payment": {
   "cf_payment_id": "885000001", "payment_status": "FAILED", "payment_amount": 170.00,
   "payment_currency": "INR", "payment_message": "Transaction declined by bank",
   "payment_time": "2023-09-12T10:15:02+05:30", "bank_reference": null, "auth_id": null,
   "payment_method": {"card": {"channel": null, "card_number": "XXXXXXXXXXXX1111", "card_network": "visa",
    "card_type": "credit_card", "card_country": "IN", "card_bank_name": "TEST BANK"}},
   "payment_group": "credit_card"
  },
  "customer_details": {"customer_name": null, "customer_id": "cust_42", "customer_email": null,
   "customer_phone": "9999999999"},
  "error_details": {"error_code": "TRANSACTION_DECLINED",
   "error_description": "issuer bank or payment service provider declined the transaction",
   "error_reason": "auth_declined", "error_source": "customer", "error_code_raw": null,
   "error_description_raw": null},
  "payment_gateway_details": {"gateway_name": "CASHFREE", "gateway_order_id": null,
   "gateway_payment_id": null, "gateway_status_code": null},
  "payment_offers": null
 },
 "event_time": "2023-09-12T10:15:09+05:30",
 "type": "PAYMENT_FAILED_WEBHOOK"
}"""

PAYMENT_USER_DROPPED_2023 = b"""{
 "data": {
  "order": {"order_id": "order_1001", "order_amount": 170.00, "order_currency": "INR", "order_tags": null},
  "payment": {
   "cf_payment_id": 885000003, "payment_status": "USER_DROPPED", "payment_amount": 170.00,
   "payment_currency": "INR", "payment_message": null, "payment_time": "2023-09-12T10:20:00+05:30",
   "bank_reference": null, "auth_id": null,
   "payment_method": {"netbanking": {"channel": null, "netbanking_bank_code": 3087,
    "netbanking_bank_name": "Test Bank"}},
   "payment_group": "net_banking"
  },
  "customer_details": null,
  "error_details": {"error_code": null, "error_description": null, "error_reason": null,
   "error_source": null, "error_code_raw": null, "error_description_raw": null},
  "payment_gateway_details": null,
  "payment_offers": null
 },
 "event_time": "2023-09-12T10:35:00+05:30",
 "type": "PAYMENT_USER_DROPPED_WEBHOOK"
}"""

PAYMENT_SUCCESS_2025 = b"""{
 "data": {
  "order": {"order_id": "order_1001", "order_amount": 170.00, "order_currency": "INR",
   "order_tags": {"plan": "team", "seats": null}},
  "payment": {
   "cf_payment_id": 5114910245771, "payment_status": "SUCCESS", "payment_amount": 170.00,
   "payment_currency": "INR", "payment_message": "00::Transaction success",
   "payment_time": "2025-03-01T09:00:00+05:30", "bank_reference": 234928698581, "auth_id": null,
   "payment_method": {"upi": {"channel": "collect", "upi_id": "testsuccess@gocash",
    "upi_instrument": "UPI", "upi_payer_ifsc": null, "upi_payer_account_number": null}},
   "payment_group": "upi",
   "international_payment": {"international": false},
   "payment_surcharge": {"payment_surcharge_service_charge": 0, "payment_surcharge_service_tax": 0}
  },
  "customer_details": {"customer_name": null, "customer_id": "cust_42", "customer_email": null,
   "customer_phone": null},
  "payment_gateway_details": {"gateway_name": "CASHFREE", "gateway_order_id": null,
   "gateway_payment_id": null, "gateway_order_reference_id": null, "gateway_settlement": "CASHFREE",
   "gateway_status_code": null},
  "payment_offers": []
 },
 "event_time": "2025-03-01T09:00:02+05:30",
 "type": "PAYMENT_SUCCESS_WEBHOOK"
}"""

REFUND_2023 = b"""{
 "data": {
  "refund": {
   "cf_refund_id": "120000001", "cf_payment_id": "885000002", "refund_id": "rf_1001_1",
   "order_id": "order_1001", "refund_amount": 70.50, "refund_currency": "INR", "entity": "Refund",
   "refund_type": "MERCHANT_INITIATED", "refund_arn": null, "refund_status": "FAILED",
   "status_description": "Refund failed at the bank", "created_at": "2023-09-13T11:00:00+05:30",
   "processed_at": null, "refund_charge": 0, "refund_note": null, "refund_splits": null,
   "metadata": null, "refund_mode": null, "requested_speed": "STANDARD", "processed_speed": null,
   "service_charge": null, "service_tax": null
  }
 },
 "event_time": "2023-09-13T11:30:00+05:30",
 "type": "REFUND_STATUS_WEBHOOK"
}"""

SETTLEMENT_2023 = b"""{
 "data": {
  "settlement": {
   "adjustment": 0, "amount_settled": 9.67, "payment_amount": 10.00,
   "payment_from": "2023-02-01T11:44:36+05:30", "payment_till": "2023-02-01T11:59:59+05:30",
   "reason": null, "service_charge": 0.28, "service_tax": 0.05,
   "settled_on": "2023-02-02T19:06:04+05:30", "settlement_amount": 9.67, "settlement_charge": 0.00,
   "settlement_id": 79524, "settlement_initiated_on": "2023-02-02T18:06:04+05:30",
   "settlement_tax": 0.00, "settlement_type": "NORMAL_SETTLEMENT", "status": "SUCCESS",
   "utr": 2341234, "remarks": null
  }
 },
 "event_time": "2023-02-02T19:06:05+05:30",
 "type": "SETTLEMENT_SUCCESS"
}"""

SETTLEMENT_2025 = b"""{
 "data": {
  "settlement": {
   "adjustment": 0.00, "amount_settled": null, "payment_amount": 500.00,
   "payment_from": "2025-03-01T00:00:00+05:30", "payment_till": "2025-03-01T23:59:59+05:30",
   "reason": null, "service_charge": 9.50, "service_tax": 1.71, "settled_on": null,
   "settlement_amount": 488.79, "settlement_charge": 0.00, "settlement_id": "81234",
   "settlement_initiated_on": "2025-03-02T10:00:00+05:30", "settlement_tax": 0.00,
   "settlement_type": "NORMAL_SETTLEMENT", "status": "PENDING", "utr": null, "remarks": null,
   "forex_conversion_handling_charge": null, "forex_conversion_handling_tax": null
  }
 },
 "event_time": "2025-03-02T10:00:01+05:30",
 "type": "SETTLEMENT_INITIATED"
}"""

DISPUTE_2023 = b"""{
 "data": {
  "dispute": {
   "dispute_id": "433475257", "dispute_type": "CHARGEBACK", "reason_code": "4855",
   "reason_description": "Goods or services not provided", "dispute_amount": 170.00,
   "created_at": "2023-09-20T12:00:00+05:30", "updated_at": "2023-09-20T12:00:00+05:30",
   "respond_by": "2023-09-27T23:59:59+05:30", "dispute_status": "CHARGEBACK_CREATED",
   "cf_dispute_remarks": null, "dispute_action_on": "MERCHANT"
  },
  "order_details": {"order_id": "order_1001", "order_amount": 170.00, "order_currency": "INR",
   "cf_payment_id": 885000002, "payment_amount": 170.00, "payment_currency": "INR"},
  "customer_details": {"customer_name": null, "customer_phone": null, "customer_email": null}
 },
 "event_time": "2023-09-20T12:00:01+05:30",
 "type": "DISPUTE_CREATED"
}"""

DISPUTE_2025 = b"""{
 "data": {
  "dispute": {
   "dispute_id": 433475257, "dispute_type": "CHARGEBACK", "reason_code": "4855",
   "reason_description": "Goods or services not provided", "dispute_amount": 170.00,
   "dispute_amount_currency": "INR",
   "created_at": "2023-09-20T12:00:00+05:30", "updated_at": "2023-09-22T16:45:10+05:30",
   "respond_by": "2023-09-27T23:59:59+05:30", "dispute_status": "CHARGEBACK_UNDER_REVIEW",
   "cf_dispute_remarks": "Evidence received", "dispute_action_on": "CASHFREE",
   "preferred_evidence": [{"document_type": "DeliveryProof", "document_description": "proof"}],
   "dispute_evidence": []
  },
  "order_details": {"order_id": "order_1001", "order_amount": 170.00, "order_currency": "INR",
   "cf_payment_id": "885000002", "payment_amount": 170.00, "payment_currency": "INR"},
  "customer_details": {"customer_name": "Asha", "customer_phone": 9999999999,
   "customer_email": "asha@example.com"}
 },
 "event_time": "2023-09-22T16:45:11+05:30",
 "type": "DISPUTE_UPDATED"
}"""

#: Headers a 2025-01-01 endpoint receives besides the signature pair.
HEADERS_2025 = {
    "content-type": "application/json",
    "x-webhook-version": "2025-01-01",
    "x-webhook-attempt": "1",
    "x-idempotency-key": "bWpZQ2xQb3JzZ2VOc2pDZ1hWY2hrQT09",
}
HEADERS_2023 = {
    "content-type": "application/json",
    "x-webhook-version": "2023-08-01",
    "x-webhook-attempt": "1",
}
