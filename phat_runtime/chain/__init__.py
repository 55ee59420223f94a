"""Substrate client, protocol message codec, block source, devnet launcher (later issue).
"""
