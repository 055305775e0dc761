"""Damp and mould cases for landlords: the rules a case follows, with no I/O.

    clocks    Awaab's Law clocks (SI 2025/1042): working days in England, each clock's due
              time and state from the case's milestones
"""
