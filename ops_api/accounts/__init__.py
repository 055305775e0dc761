"""Accounts of the operations API: users and roles, passwords, sessions, invitations, the login limit.

    roles        Role and User, the value objects every route sees
    passwords    argon2id hashing (in a worker thread: it is slow on purpose)
    store        users in the database: create, find, list, update, disable
    sessions     opaque bearer tokens stored as their SHA-256; open, resolve, close
    invitations  single-use, expiring householder invitation links
    tenancies    household memberships (from, to, why ended): what a householder may see, and from when
    ratelimit    failed logins per username and per client address, in the database
    cli          `cityops user add|invite|list|disable|password|tenancies|end-tenancy`
"""
