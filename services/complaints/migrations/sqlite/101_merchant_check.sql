-- What the merchant alliance said of the complaint's merchant at submission:
-- verified, not_a_member, unverified; NULL when no merchant is referenced.
ALTER TABLE complaints ADD COLUMN merchant_check TEXT;
