"""Word lists and small text helpers for the generated workspace.

Kept apart from generator.py so the record logic stays readable; everything here is pure data or a
pure function of a `random.Random`, so generated text is deterministic per record seed.
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Ada", "Bruno", "Chloe", "Dmitri", "Elena", "Farah", "Gustavo", "Hana", "Ivan", "Julia", "Kofi",
    "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Bjorn", "Carmen", "Diego", "Eun-ji", "Fatima",
)
LAST_NAMES = (
    "Okafor", "Schmidt", "Dubois", "Ivanova", "Rossi", "Nakamura", "Silva", "Kowalski", "Haddad",
    "Nguyen", "Andersen", "Garcia", "Mensah", "Patel", "O'Brien", "Muller", "Lindqvist", "Costa",
    "Yilmaz", "Kim", "Moreau", "Novak", "Fischer", "Chen", "Duarte", "Eriksen", "Ferreira", "Hughes",
)
EMAIL_DOMAINS = (
    "gmail.com", "outlook.com", "yahoo.com", "proton.me", "fastmail.com", "example.org", "acme.io",
    "globex.com", "initech.net", "umbrella.co",
)
COMPANY_A = (
    "Bright", "Blue", "North", "Quantum", "Silver", "Rapid", "Green", "Iron", "Lunar", "Nova", "Pixel",
    "Summit", "Cedar", "Harbor", "Vertex", "Atlas", "Echo", "Prism", "Solar", "Delta", "Cobalt",
    "Maple", "Orbit", "Zenith", "Falcon", "Granite", "Horizon", "Ember", "Willow", "Beacon",
)
COMPANY_B = (
    "Analytics", "Logistics", "Labs", "Systems", "Foods", "Health", "Robotics", "Media", "Energy",
    "Finance", "Studios", "Networks", "Dynamics", "Works", "Ventures", "Retail", "Travel", "Security",
    "Software", "Bio", "Cloud", "Mobility", "Learning", "Capital",
)
INDUSTRIES = ("SaaS", "E-commerce", "Healthcare", "Fintech", "Education", "Logistics", "Media", "Gaming")
PLANS = ("Free", "Starter", "Pro", "Enterprise")
LOCATIONS = (
    ("United States", "California", "San Francisco"), ("United States", "New York", "New York"),
    ("Ireland", "Dublin", "Dublin"), ("Germany", "Berlin", "Berlin"), ("France", "Ile-de-France", "Paris"),
    ("Brazil", "Sao Paulo", "Sao Paulo"), ("Japan", "Tokyo", "Tokyo"), ("India", "Karnataka", "Bengaluru"),
    ("Nigeria", "Lagos", "Lagos"), ("Australia", "New South Wales", "Sydney"),
    ("Canada", "Ontario", "Toronto"), ("Spain", "Catalonia", "Barcelona"),
)
BROWSERS = (("chrome", "124.0"), ("firefox", "125.0"), ("safari", "17.4"), ("edge", "123.0"))
OSES = ("OS X 14.4", "Windows 11", "Windows 10", "Linux", "iOS 17.4", "Android 14")
LANGUAGES = ("en", "en-GB", "de", "fr", "pt-BR", "ja", "es")
SOCIAL = ("Twitter", "LinkedIn", "GitHub", "Facebook")
JOB_TITLES = ("Support Engineer", "Support Lead", "Customer Success Manager", "Head of Support",
              "Solutions Engineer", "Account Executive", "Product Specialist")
TEAM_NAMES = ("Tier 1", "Tier 2", "Billing", "Onboarding", "Enterprise", "EMEA", "APAC", "Americas",
              "VIP", "Escalations", "Sales", "Partnerships", "Technical", "Success", "Night Shift")
TAG_WORDS = ("vip", "churn-risk", "beta", "billing", "bug", "feature-request", "enterprise", "trial",
             "onboarding", "priority", "refund", "security", "mobile", "api", "integration", "feedback")
SEGMENT_WORDS = ("Active users", "New leads", "Slipping away", "Paying customers", "Trialists",
                 "Power users", "Dormant", "Mobile users", "Enterprise accounts", "Newsletter")
WORDS = (
    "account", "invoice", "login", "password", "export", "dashboard", "integration", "webhook", "plan",
    "upgrade", "refund", "error", "page", "report", "billing", "seat", "team", "workspace", "settings",
    "api", "token", "sync", "data", "mobile", "app", "email", "notification", "calendar", "widget",
    "please", "thanks", "help", "issue", "today", "again", "working", "broken", "quickly", "update",
)
TITLES = ("Cannot log in", "Question about my invoice", "Export is failing", "Feature request",
          "Upgrade to annual plan", "API returns 500", "Refund request", "Mobile app crash",
          "How do I invite my team?", "Webhook not firing", None, None, None)
SLA_NAMES = ("VIP 1h first response", "Standard 8h", "Enterprise 30m")


def sentence(rng: random.Random, lo: int = 4, hi: int = 14) -> str:
    """A pseudo-sentence: cheap, deterministic, and varied enough for body/search tests."""
    words = [WORDS[rng.randrange(len(WORDS))] for _ in range(rng.randint(lo, hi))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def html_body(rng: random.Random, paragraphs: int = 1) -> str:
    """An HTML body the way Intercom stores comments and notes: one <p> per paragraph."""
    return "".join(f"<p>{sentence(rng)}</p>" for _ in range(paragraphs))


def company_name(index: int) -> str:
    """A unique company name derived from its index (so name lookups are exact and invertible)."""
    a, b = len(COMPANY_A), len(COMPANY_B)
    base = f"{COMPANY_A[index % a]} {COMPANY_B[(index // a) % b]}"
    cycle = index // (a * b)
    return base if cycle == 0 else f"{base} {cycle + 1}"
