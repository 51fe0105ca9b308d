#!/usr/bin/env python3
"""Generate the demo data read by specs/demo/customers.toml.

Writes, next to this script:
  crm_customers.csv   CRM export: UTF-8 with BOM, CRLF, comma, header row
  erp_customers.json  ERP export: {"data": [...]}

Deterministic: standard library only, fixed seed. Run with
    python3 specs/demo/generate.py
and it rewrites both files byte for byte the same.

What is planted (the point of the demo), see PLAN below for the counts:
  * CRM customers matched in the ERP by crm_ref, by email (trim + lowercase)
    and by phone only (E.164, written differently on each side);
  * drift among matched pairs: city / company / last name, credit_limit over
    and within the 0.01 tolerance, description vs notes (create_only), city
    differing only in case (loose compare: no change);
  * creates (CRM only), orphans (ERP only), duplicate emails on both sides,
    invalid rows (empty required email, unmapped status) and bad rows
    (non-numeric credit_limit, impossible date, empty customer_id).
"""

import csv
import datetime as dt
import io
import json
import os
import random
import re
import sys
import unicodedata

SEED = 20261120
HERE = os.path.dirname(os.path.abspath(__file__))
CSV_PATH = os.path.join(HERE, "crm_customers.csv")
JSON_PATH = os.path.join(HERE, "erp_customers.json")

CSV_HEADER = [
    "customer_id", "first_name", "last_name", "email", "phone", "company",
    "city", "zip", "country", "credit_limit", "status", "customer_since",
    "updated_at", "notes",
]

# How many CRM rows of each kind.
PLAN = {
    "ref": 150,          # matched, ERP crm_ref = CRM id
    "email": 90,         # matched, crm_ref null, same email after trim+lower
    "phone": 10,         # matched, crm_ref null, email differs/missing, same E.164 phone
    "create": 40,        # CRM only: to be created in the ERP
    "crm_dup": 6,        # 3 emails each on 2 CRM rows (different ids)
    "erp_dup_crm": 2,    # CRM row whose email is on 2 ERP records (ambiguous)
    "empty_email": 2,    # email is required
    "unmapped": 3,       # status outside the map
    "bad_credit": 2,     # credit_limit not a number
    "bad_date": 1,       # customer_since 31/02/2025
    "empty_id": 1,       # customer_id empty
    "prospect": 16,      # filtered out by the spec
}
N_ORPHANS = 20           # ERP only
# Drift among the 240 pairs matched by crm_ref or email (disjoint sets).
DRIFT = {
    "city": 10,          # different city (English exonym in the ERP)
    "company": 10,       # different company name
    "last_name": 10,     # different last name
    "credit_big": 15,    # credit_limit differs by more than 0.01
    "credit_half": 3,    # credit_limit differs by exactly 0.005 (within tolerance)
    "description": 10,   # ERP description worded differently (create_only: kept)
    "city_case": 5,      # city differs only in case (loose: not a change)
}
N_EMPTY_COUNTRY = 8      # CRM country empty (spec default IT)

STATUS_MAP = {"active": "A", "inactive": "I", "blocked": "B"}

FIRST_NAMES = [
    "Marco", "Giuseppe", "Giovanni", "Antonio", "Francesco", "Alessandro",
    "Andrea", "Luca", "Matteo", "Lorenzo", "Davide", "Simone", "Federico",
    "Riccardo", "Stefano", "Paolo", "Roberto", "Fabio", "Massimo", "Claudio",
    "Niccolò", "Gabriele", "Tommaso", "Emanuele", "Pietro", "Salvatore",
    "Vincenzo", "Domenico", "Carlo", "Enrico", "Maria", "Giulia", "Francesca",
    "Chiara", "Sara", "Martina", "Valentina", "Alessia", "Federica", "Elena",
    "Silvia", "Laura", "Paola", "Anna", "Roberta", "Elisa", "Giorgia",
    "Alice", "Beatrice", "Camilla", "Ilaria", "Serena", "Cristina", "Monica",
    "Barbara", "Daniela", "Lucia", "Rita", "Teresa", "Noemi",
]
LAST_NAMES = [
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo",
    "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca",
    "Mancini", "Costa", "Giordano", "Rizzo", "Lombardi", "Moretti",
    "Barbieri", "Fontana", "Santoro", "Mariani", "Rinaldi", "Caruso",
    "Ferrara", "Galli", "Martini", "Leone", "Longo", "Gentile", "Martinelli",
    "Vitale", "Lombardo", "Serra", "Coppola", "De Santis", "D'Angelo",
    "Marchetti", "Parisi", "Villa", "Conte", "Ferraro", "Ferri", "Fabbri",
    "Bianco", "Marini", "Grasso", "Valentini", "Messina", "Sala", "De Angelis",
    "Gatti", "Pellegrini", "Palumbo", "Sanna", "Farina", "Rizzi", "Monti",
    "Cattaneo", "Morelli", "Amato", "Silvestri", "Mazza", "Testa", "Grassi",
    "Pellegrino", "Carbone", "Giuliani", "Benedetti", "Barone", "Rossetti",
    "Caputo", "Montanari", "Guerra", "Palmieri", "Bernardi", "Martino",
    "Fiore", "D'Amico", "Dell'Acqua", "Lo Russo", "Dalla Costa", "Negri",
]
# A last-name change in the ERP (old spelling / maiden name / typo).
LAST_NAME_DRIFT = {
    "Rossi": "Rosi", "Russo": "Ruso", "Ferrari": "Ferari", "Esposito": "Esposto",
    "Bianchi": "Bianco", "Romano": "Romani", "Colombo": "Colombi",
    "Ricci": "Rizzi", "Marino": "Marini", "Greco": "Grieco", "Bruno": "Bruni",
    "Gallo": "Galli", "Conti": "Conte", "De Luca": "Deluca", "Costa": "Dalla Costa",
    "Mancini": "Mancinelli", "Giordano": "Giordani", "Rizzo": "Riso",
    "Lombardi": "Lombardo", "Moretti": "Moretto", "Santoro": "Santori",
    "De Santis": "Santis", "D'Angelo": "D'Angeli", "D'Amico": "Damico",
}

# city, zips, landline area code, weight
CITIES = [
    ("Roma", ["00184", "00195", "00136", "00153", "00198"], "06", 9),
    ("Milano", ["20121", "20135", "20144", "20159"], "02", 9),
    ("Torino", ["10121", "10138", "10143"], "011", 5),
    ("Napoli", ["80121", "80133", "80142"], "081", 5),
    ("Firenze", ["50122", "50134"], "055", 4),
    ("Bologna", ["40121", "40137"], "051", 4),
    ("Venezia", ["30121", "30172"], "041", 3),
    ("Genova", ["16121", "16145"], "010", 3),
    ("Palermo", ["90133", "90141"], "091", 3),
    ("Bari", ["70121", "70126"], "080", 3),
    ("Verona", ["37121", "37135"], "045", 2),
    ("Padova", ["35121", "35137"], "049", 2),
    ("Trieste", ["34121"], "040", 1),
    ("Brescia", ["25121", "25124"], "030", 2),
    ("Parma", ["43121"], "0521", 1),
    ("Modena", ["41121"], "059", 1),
    ("Bergamo", ["24121"], "035", 2),
    ("Pisa", ["56121"], "050", 1),
    ("Perugia", ["06121", "06122"], "075", 1),
    ("Ancona", ["60121"], "071", 1),
    ("Cagliari", ["09121", "09127"], "070", 1),
    ("Aosta", ["11100"], "0165", 1),
    ("L'Aquila", ["67100"], "0862", 1),
    ("Forlì", ["47121"], "0543", 1),
    ("Cantù", ["22063"], "031", 1),
]
CITY_EXONYM = {
    "Roma": "Rome", "Milano": "Milan", "Torino": "Turin", "Napoli": "Naples",
    "Firenze": "Florence", "Venezia": "Venice", "Genova": "Genoa",
    "Padova": "Padua",
}
MOBILE_PREFIXES = ["320", "328", "329", "333", "334", "338", "339", "340",
                   "345", "347", "348", "349", "366", "380", "392", "393"]

EMAIL_DOMAINS = ["gmail.com"] * 6 + ["libero.it"] * 4 + [
    "hotmail.it", "outlook.it", "yahoo.it", "virgilio.it", "tiscali.it",
    "alice.it", "fastwebnet.it", "tin.it", "pec.it", "email.it"]

NOTES = [
    "Cliente puntuale nei pagamenti.",
    "Preferisce essere contattato via email.",
    "Richiede fattura elettronica, codice SDI in anagrafica.",
    "Sconto 5% concordato per ordini sopra i 1.000 euro.",
    "Contatto principale in amministrazione.",
    "Ritardi nei pagamenti nel 2025; monitorare.",
    "Chiamare solo al mattino.",
    "Referente tecnico diverso dal titolare.",
    "Ha chiesto il catalogo aggiornato.",
    "Consegne solo il martedì e il giovedì.",
    "Pagamento a 60 giorni fine mese.",
    "Interessato alla nuova linea di prodotti.",
    "Visitato dall'agente a ottobre.",
    "Non inviare materiale promozionale.",
]
# The ERP team's own wording of the same idea (description drift).
NOTES_ERP = {
    "Cliente puntuale nei pagamenti.": "Buon pagatore, nessun insoluto.",
    "Preferisce essere contattato via email.": "Contattare preferibilmente per e-mail.",
    "Richiede fattura elettronica, codice SDI in anagrafica.": "Fatturazione elettronica (SDI) obbligatoria.",
    "Sconto 5% concordato per ordini sopra i 1.000 euro.": "Sconto 5% oltre 1000 EUR d'ordine.",
    "Contatto principale in amministrazione.": "Riferimento: ufficio amministrativo.",
    "Ritardi nei pagamenti nel 2025; monitorare.": "Attenzione: pagamenti in ritardo (2025).",
    "Chiamare solo al mattino.": "Reperibile solo la mattina.",
    "Referente tecnico diverso dal titolare.": "Il referente tecnico non è il titolare.",
    "Ha chiesto il catalogo aggiornato.": "Inviato catalogo 2026.",
    "Consegne solo il martedì e il giovedì.": "Consegna: mar/gio.",
    "Pagamento a 60 giorni fine mese.": "Condizioni: 60 gg f.m.",
    "Interessato alla nuova linea di prodotti.": "Potenziale cliente per la linea nuova.",
    "Visitato dall'agente a ottobre.": "Visita agente: ottobre.",
    "Non inviare materiale promozionale.": "No newsletter / promo.",
}

COMPANY_SUFFIX_SWAP = {" S.r.l.": " S.p.A.", " S.p.A.": " S.r.l.",
                       " S.n.c.": " S.a.s.", " S.a.s.": " S.n.c."}


def slug(s):
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", s.lower())


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.used_emails = set()   # normalized (trim + lower)
        self.used_phones = set()   # E.164

    # ---- building blocks -------------------------------------------------
    def city(self, only=None):
        pool = [c for c in CITIES if only is None or c[0] in only]
        c = self.r.choices(pool, weights=[w for *_, w in pool])[0]
        return c[0], self.r.choice(c[1]), c[2]

    def email(self, first, last, domain=None):
        r = self.r
        f, l = slug(first), slug(last)
        while True:
            pat = r.randrange(7)
            local = [f"{f}.{l}", f"{f[0]}.{l}", f"{f}{l}", f"{l}.{f}",
                     f"{f}.{l}{r.randrange(1, 99)}", f"{f}{r.randrange(60, 99)}",
                     f"{f[0]}{l}{r.randrange(1, 9)}"][pat]
            e = f"{local}@{domain or r.choice(EMAIL_DOMAINS)}"
            if e not in self.used_emails:
                self.used_emails.add(e)
                return e

    def phone(self, area):
        """Fresh unique number: (kind, prefix, subscriber)."""
        r = self.r
        while True:
            if r.random() < 0.4:
                p = (("mobile", r.choice(MOBILE_PREFIXES),
                      f"{r.randrange(10**6, 10**7):07d}"))
            else:
                n = 10 - len(area)  # national numbers of 10 digits
                p = ("land", area, str(r.randrange(2, 10)) +
                     f"{r.randrange(0, 10**(n-1)):0{n-1}d}")
            if e164(p) not in self.used_phones:
                self.used_phones.add(e164(p))
                return p

    def messy_email(self, e, p_case=0.3, p_space=0.15):
        r = self.r
        if r.random() < p_case:
            e = "".join(ch.upper() if ch.isalpha() and r.random() < 0.3 else ch
                        for ch in e)
            if e == e.lower():
                e = e[0].upper() + e[1:]
        if r.random() < p_space:
            e = r.choice([" ", "  ", ""]) + e + r.choice([" ", "", "  "])
            if e == e.strip():
                e = " " + e
        return e

    def company(self, first, last):
        r = self.r
        l2 = r.choice(LAST_NAMES)
        while l2 == last:
            l2 = r.choice(LAST_NAMES)
        t = r.choices(range(16), weights=[8, 4, 5, 4, 2, 3, 2, 1, 3, 2, 3, 2, 3, 2, 3, 3])[0]
        return [
            f"{last} S.r.l.", f"{last} & Figli S.n.c.", f"{last} Impianti S.r.l.",
            f"Studio {last}", f"{last}, {l2} & C. S.a.s.", f"Ferramenta {last}",
            f"Studio Associato {last}, {l2}", f'Trattoria "Da {first}"',
            f"{last} Costruzioni S.p.A.", f"Farmacia {last}", f"Autofficina {last}",
            f"{last} Trasporti S.r.l.", f"Panificio {last}", f"Agenzia Immobiliare {last}",
            f"{last} Consulting", f"{last} Elettronica S.r.l.",
        ][t]

    def notes(self):
        r = self.r
        if r.random() < 0.3:
            return ""
        return " ".join(r.sample(NOTES, r.choice([1, 1, 2])))

    def customer(self, city_only=None, status=None, notes_required=False, last_only=None):
        r = self.r
        first = r.choice(FIRST_NAMES)
        last = r.choice([l for l in LAST_NAMES if last_only is None or l in last_only])
        city, zip_, area = self.city(city_only)
        credit_cents = r.randrange(2, 81) * 25000  # 500.00 .. 20000.00
        if r.random() < 0.1:
            credit_cents += r.choice([50, 5050, 12550])
        notes = self.notes()
        while notes_required and not notes:
            notes = self.notes()
        return {
            "first": first, "last": last, "email": self.email(first, last),
            "phone": self.phone(area), "company": self.company(first, last),
            "city": city, "zip": zip_, "country": "IT", "credit": credit_cents,
            "status": status or r.choices(["active", "inactive", "blocked"], [75, 15, 10])[0],
            "since": dt.date(2010, 1, 1) + dt.timedelta(days=r.randrange(0, 6150)),
            "notes": notes,
        }


# ---- phones -------------------------------------------------------------
def e164(p):
    return "+39" + p[1] + p[2]


LAND_FORMATS = ["intl_spaced", "0039_dash", "paren", "national_spaced", "e164"]
MOBILE_FORMATS = ["mobile_spaced", "mobile_intl_spaced", "e164", "0039_plain", "mobile_dash"]


def fmt_phone(p, style):
    kind, a, s = p
    cut = 4 if len(s) == 8 else 3
    s1, s2 = s[:cut], s[cut:]
    if kind == "mobile":
        return {
            "mobile_spaced": f"{a} {s[:3]} {s[3:]}",
            "mobile_intl_spaced": f"+39 {a} {s[:3]} {s[3:]}",
            "e164": f"+39{a}{s}",
            "0039_plain": f"0039 {a} {s}",
            "mobile_dash": f"{a}-{s}",
        }[style]
    return {
        "intl_spaced": f"+39 {a} {s1} {s2}",
        "0039_dash": f"0039 {a}-{s1}-{s2}",
        "paren": f"({a}) {s}",
        "national_spaced": f"{a} {s1} {s2}",
        "e164": f"+39{a}{s}",
    }[style]


def two_styles(r, p):
    styles = MOBILE_FORMATS if p[0] == "mobile" else LAND_FORMATS
    a = r.choice(styles)
    b = r.choice([s for s in styles if s != a])
    return a, b


def normalize_phone(s):
    """Independent check: written form -> E.164 (Italian numbers)."""
    if s is None:
        return None
    s = s.strip()
    if not s:
        return None
    plus = s.startswith("+")
    d = re.sub(r"\D", "", s)
    if plus:
        return "+" + d
    if d.startswith("00"):
        return "+" + d[2:]
    return "+39" + d


def normalize_email(s):
    if s is None:
        return None
    s = s.strip().lower()
    return s or None


# ---- money --------------------------------------------------------------
def crm_credit(cents, r):
    if cents % 100 == 0 and r.random() < 0.15:
        return str(cents // 100)
    return f"{cents // 100}.{cents % 100:02d}"


def erp_credit(cents):
    return cents / 100


def main():
    g = Gen(SEED)
    r = g.r

    # 1. Decide the kind of every CRM row, then shuffle them into id order.
    kinds = [k for k, n in PLAN.items() for _ in range(n)]
    r.shuffle(kinds)
    rows = [{"kind": k} for k in kinds]

    # 2. Drift among pairs matched by crm_ref or email.
    matched_fk = [row for row in rows if row["kind"] in ("ref", "email")]
    pick = r.sample(range(len(matched_fk)), sum(DRIFT.values()))
    i = 0
    for d, n in DRIFT.items():
        for j in pick[i:i + n]:
            matched_fk[j]["drift"] = d
        i += n

    # 3. Ids (the empty-id row gets none, but keeps its place).
    next_id = 1
    for row in rows:
        if row["kind"] == "empty_id":
            row["id"] = ""
        else:
            row["id"] = f"C{next_id:04d}"
            next_id += 1

    # 4. Customers.
    for row in rows:
        k, d = row["kind"], row.get("drift")
        if k == "prospect":
            c = g.customer(status="prospect")
        elif k == "unmapped":
            c = g.customer(status=None)
        elif d == "city":
            c = g.customer(city_only=set(CITY_EXONYM))
        elif d == "last_name":
            c = g.customer(last_only=LAST_NAME_DRIFT)
        elif d == "description":
            c = g.customer(notes_required=True)
        else:
            c = g.customer()
        row["c"] = c
    for n, row in enumerate([x for x in rows if x["kind"] == "unmapped"]):
        row["c"]["status"] = ["suspended", "suspended", "closed"][n]

    # Duplicate emails in the CRM: 3 pairs. Pair 1 is the same person entered
    # twice, pairs 2-3 are relatives sharing a mailbox.
    dups = [x for x in rows if x["kind"] == "crm_dup"]
    crm_dup_emails = []
    for n in range(3):
        a, b = dups[2 * n], dups[2 * n + 1]
        if n == 0:
            for key in ("first", "last", "company", "city", "zip"):
                b["c"][key] = a["c"][key]
        else:
            b["c"]["last"] = a["c"]["last"]
            b["c"]["city"], b["c"]["zip"] = a["c"]["city"], a["c"]["zip"]
        g.used_emails.discard(b["c"]["email"])
        b["c"]["email"] = a["c"]["email"]
        crm_dup_emails.append(a["c"]["email"])

    # Multi-line notes: one in a create, two in plain matched pairs.
    plain = [x for x in rows if x["kind"] in ("ref", "email") and "drift" not in x]
    creates = [x for x in rows if x["kind"] == "create"]
    for x in [creates[3], plain[5], plain[40]]:
        x["c"]["notes"] = (r.choice(NOTES) + "\n" + r.choice(NOTES))
    multiline_ids = [x["id"] for x in [creates[3], plain[5], plain[40]]]

    # Empty country on a few valid rows (the spec's default is IT).
    cand = [x for x in rows if x["kind"] in ("ref", "email", "create")]
    for x in r.sample(cand, N_EMPTY_COUNTRY):
        x["c"]["country"] = ""

    # 5. CRM rows as written.
    csv_rows = []
    for row in rows:
        c, k = row["c"], row["kind"]
        cs, es = two_styles(r, c["phone"])
        row["styles"] = (cs, es)
        email = g.messy_email(c["email"], *((0.5, 0.25) if k == "email" else (0.3, 0.12)))
        if k == "empty_email":
            email = ""
        credit = crm_credit(c["credit"], r)
        if k == "bad_credit":
            credit = ["n/a", "TBD"][sum(1 for x in csv_rows if x[9] in ("n/a", "TBD"))]
        since = c["since"].strftime("%d/%m/%Y")
        if k == "bad_date":
            since = "31/02/2025"
        upd = dt.datetime(2026, 11, 20, 8, 0) + dt.timedelta(minutes=r.randrange(0, 11 * 60))
        csv_rows.append([
            row["id"], c["first"], c["last"], email, fmt_phone(c["phone"], cs),
            c["company"], c["city"], c["zip"], c["country"], credit, c["status"],
            since, upd.strftime("%Y-%m-%d %H:%M:%S"), c["notes"],
        ])

    # 6. ERP records.
    erp = []
    examples = {}

    def erp_record(c, crm_ref, phone_str, primary, billing=None, emails_array=True):
        emails = []
        if primary is not None:
            emails.append({"type": "primary", "email": primary})
        if billing is not None:
            emails.insert(r.randrange(len(emails) + 1), {"type": "billing", "email": billing})
        rec = {"id": None, "crm_ref": crm_ref,
               "name": {"first": c["first"], "last": c["last"]}}
        if emails_array:
            rec["emails"] = emails
        upd = dt.datetime(2026, 11, 17, 6, 0) + dt.timedelta(minutes=15 * r.randrange(0, 300))
        rec.update({
            "phones": [{"number": phone_str}],
            "company": c["company"],
            "address": {"city": c["city"], "zip": c["zip"], "country": "IT"},
            "credit_limit": erp_credit(c["credit"]),
            "status": STATUS_MAP[c["status"]],
            "since": c["since"].isoformat(),
            "description": c["notes"],
            "updated": upd.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
        return rec

    def billing_for(c):
        if r.random() < 0.25:
            return f"amministrazione@{slug(c['last'])}{r.choice(['srl', 'snc', 'group', ''])}.it"
        return None

    phone_rows = [x for x in rows if x["kind"] == "phone"]
    for row in rows:
        k, c, d = row["kind"], row["c"], row.get("drift")
        if k not in ("ref", "email", "phone"):
            continue
        phone_str = fmt_phone(c["phone"], row["styles"][1])
        primary = c["email"]
        billing = billing_for(c)
        emails_array = True
        if k == "phone":
            n = phone_rows.index(row)
            if n == 0:
                emails_array, primary, billing = False, None, None
            elif n in (1, 2):
                primary = None
                billing = f"fatture.{slug(c['last'])}{n}@{r.choice(['pec.it', 'legalmail.it'])}"
            else:  # an older address nobody updated
                primary = g.email(c["first"], c["last"],
                                  domain=r.choice(["libero.it", "tiscali.it", "virgilio.it"]))
        rec = erp_record(c, row["id"] if k == "ref" else None, phone_str, primary,
                         billing, emails_array)
        crm_val = erp_val = None
        if d == "city":
            erp_val = rec["address"]["city"] = CITY_EXONYM[c["city"]]
            crm_val, field = c["city"], "city"
        elif d == "city_case":
            erp_val = rec["address"]["city"] = r.choice([c["city"].upper(), c["city"].lower()])
            crm_val, field = c["city"], "city"
        elif d == "company":
            old = c["company"]
            for a_, b_ in COMPANY_SUFFIX_SWAP.items():
                if old.endswith(a_):
                    new = old[: -len(a_)] + b_
                    break
            else:
                new = old + " S.r.l."
            erp_val = rec["company"] = new
            crm_val, field = old, "company"
        elif d == "last_name":
            erp_val = rec["name"]["last"] = LAST_NAME_DRIFT[c["last"]]
            crm_val, field = c["last"], "last_name"
        elif d == "credit_big":
            delta = r.choice([50000, -50000, 100000, 25000, -25000, 50, 1000, 200000])
            if c["credit"] + delta <= 0:
                delta = -delta
            erp_val = rec["credit_limit"] = erp_credit(c["credit"] + delta)
            crm_val, field = csv_rows[rows.index(row)][9], "credit_limit"
        elif d == "credit_half":
            erp_val = rec["credit_limit"] = round(c["credit"] / 100 + 0.005, 3)
            crm_val, field = csv_rows[rows.index(row)][9], "credit_limit"
        elif d == "description":
            erp_val = rec["description"] = " ".join(NOTES_ERP[s] for s in NOTES
                                                    if s in c["notes"])
            assert erp_val and erp_val != c["notes"], c["notes"]
            crm_val, field = c["notes"], "notes"
        if d and d not in examples:
            examples[d] = (row["id"], field, crm_val, erp_val)
        row["erp"] = rec
        erp.append(rec)

    # Duplicate emails in the ERP: 2 emails, each on two ERP records with no
    # crm_ref, and on one CRM row (whose email key is therefore ambiguous).
    erp_dup_emails = []
    for n, row in enumerate(x for x in rows if x["kind"] == "erp_dup_crm"):
        c = row["c"]
        if n == 1:  # a shared office mailbox
            g.used_emails.discard(c["email"])
            c["email"] = f"info@{slug(c['last'])}{slug(c['city'])}.it"
            assert c["email"] not in g.used_emails
            g.used_emails.add(c["email"])
            csv_rows[rows.index(row)][3] = c["email"]
        erp_dup_emails.append(c["email"])
        for m in range(2):
            twin = dict(c)
            if n == 1 and m == 1:  # a colleague at the same office
                twin["first"] = r.choice([f for f in FIRST_NAMES if f != c["first"]])
            twin["phone"] = g.phone(CITY_AREA[c["city"]])
            erp.append(erp_record(twin, None, fmt_phone(twin["phone"], "e164"),
                                  c["email"].lower(), billing_for(c)))

    # Orphans: only in the ERP.
    for _ in range(N_ORPHANS):
        c = g.customer()
        erp.append(erp_record(c, None, fmt_phone(c["phone"], r.choice(
            MOBILE_FORMATS if c["phone"][0] == "mobile" else LAND_FORMATS)),
            c["email"], billing_for(c)))

    r.shuffle(erp)
    for n, rec in enumerate(erp):
        rec["id"] = f"E{10001 + n}"
    erp.sort(key=lambda x: x["id"])

    # 7. Write.
    with open(CSV_PATH, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(CSV_HEADER)
        w.writerows(csv_rows)
    with open(JSON_PATH, "w", encoding="utf-8", newline="\n") as f:
        json.dump({"data": erp}, f, indent=1, ensure_ascii=False)
        f.write("\n")

    verify(rows, examples, crm_dup_emails, erp_dup_emails, multiline_ids)


CITY_AREA = {c[0]: c[2] for c in CITIES}


def verify(rows, examples, crm_dup_emails, erp_dup_emails, multiline_ids):
    """Re-read both files and check that the planted categories come out."""
    raw = open(CSV_PATH, "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf"), "BOM"
    assert raw.count(b"\r\n") == len(rows) + 1, "one CRLF per record"
    with open(CSV_PATH, encoding="utf-8-sig", newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        crm = [dict(zip(header, rec)) for rec in rd]
    assert header == CSV_HEADER and len(crm) == len(rows)
    with open(JSON_PATH, encoding="utf-8") as f:
        erp = json.load(f)["data"]

    # Rejects and filter.
    def bad(x):
        if not x["customer_id"]:
            return "empty_id"
        try:
            float(x["credit_limit"])
        except ValueError:
            return "bad_credit"
        try:
            dt.datetime.strptime(x["customer_since"], "%d/%m/%Y")
        except ValueError:
            return "bad_date"
        return None
    rejects = [x for x in crm if bad(x)]
    prospects = [x for x in crm if not bad(x) and x["status"] == "prospect"]
    pool_a = [x for x in crm if not bad(x) and x["status"] != "prospect"]
    pool_b = list(erp)

    # Keys in order; a matched record leaves the pool; duplicate values on
    # either side are ambiguous and match nothing.
    def primary(e):
        for m in e.get("emails") or []:
            if m["type"] == "primary":
                return m["email"]
        return None
    keys = [
        ("crm_ref", lambda x: x["customer_id"] or None, lambda e: e["crm_ref"]),
        ("email", lambda x: normalize_email(x["email"]), lambda e: normalize_email(primary(e))),
        ("phone", lambda x: normalize_phone(x["phone"]), lambda e: normalize_phone(e["phones"][0]["number"] if e["phones"] else None)),
    ]
    pairs, by_key, ambiguous = [], {}, {}
    for name, ka, kb in keys:
        ia, ib = {}, {}
        for x in pool_a:
            if ka(x):
                ia.setdefault(ka(x), []).append(x)
        for e in pool_b:
            if kb(e):
                ib.setdefault(kb(e), []).append(e)
        got = []
        for v, xs in ia.items():
            if v in ib:
                if len(xs) == 1 and len(ib[v]) == 1:
                    got.append((xs[0], ib[v][0]))
                else:
                    ambiguous.setdefault(name, []).append(v)
        by_key[name] = len(got)
        pairs += got
        ga = {id(a) for a, _ in got}
        gb = {id(b) for _, b in got}
        pool_a = [x for x in pool_a if id(x) not in ga]
        pool_b = [e for e in pool_b if id(e) not in gb]

    # Field drift on matched pairs, compared as the spec says.
    def loose(s):
        return (s or "").strip().lower()
    diffs = {}
    for a, b in pairs:
        checks = {
            "email": normalize_email(a["email"]) == normalize_email(primary(b)),
            "phone": normalize_phone(a["phone"]) == normalize_phone(b["phones"][0]["number"]),
            "first_name": a["first_name"].strip() == b["name"]["first"].strip(),
            "last_name": a["last_name"].strip() == b["name"]["last"].strip(),
            "company": loose(a["company"]) == loose(b["company"]),
            "city": loose(a["city"]) == loose(b["address"]["city"]),
            "zip": a["zip"] == b["address"]["zip"],
            "country": (a["country"] or "IT") == b["address"]["country"],
            "credit_limit": abs(float(a["credit_limit"]) - b["credit_limit"]) <= 0.01 + 1e-9,
            "status": {"active": "A", "inactive": "I", "blocked": "B"}.get(a["status"]) == b["status"],
            "since": dt.datetime.strptime(a["customer_since"], "%d/%m/%Y").date().isoformat() == b["since"],
        }
        for f_, ok in checks.items():
            if not ok:
                diffs[f_] = diffs.get(f_, 0) + 1
    desc_differs = sum(1 for a, b in pairs if a["notes"] != b["description"])
    city_case_only = sum(1 for a, b in pairs if a["city"] != b["address"]["city"]
                         and loose(a["city"]) == loose(b["address"]["city"]))
    credit_within = sum(1 for a, b in pairs if 0 < abs(float(a["credit_limit"]) - b["credit_limit"]) <= 0.01 + 1e-9)
    unmatched_a = pool_a
    empty_email = [x for x in unmatched_a if not x["email"].strip()]
    unmapped = [x for x in pool_a + [a for a, _ in pairs]
                if x["status"] not in ("active", "inactive", "blocked")]
    a_dups = {}
    for x in crm:
        if normalize_email(x["email"]):
            a_dups.setdefault(normalize_email(x["email"]), []).append(x["customer_id"])
    b_dups = {}
    for e in erp:
        if normalize_email(primary(e)):
            b_dups.setdefault(normalize_email(primary(e)), []).append(e["id"])

    # What the plan promised.
    assert by_key == {"crm_ref": PLAN["ref"], "email": PLAN["email"], "phone": PLAN["phone"]}, by_key
    assert diffs == {"city": DRIFT["city"], "company": DRIFT["company"],
                     "last_name": DRIFT["last_name"], "credit_limit": DRIFT["credit_big"],
                     "email": PLAN["phone"]}, diffs
    assert desc_differs == DRIFT["description"], desc_differs
    assert city_case_only == DRIFT["city_case"] and credit_within == DRIFT["credit_half"]
    creates_expected = PLAN["create"] + PLAN["crm_dup"] + PLAN["erp_dup_crm"] + PLAN["empty_email"] + PLAN["unmapped"]
    assert len(unmatched_a) == creates_expected, len(unmatched_a)
    assert len(pool_b) == N_ORPHANS + 4, len(pool_b)
    assert len(empty_email) == 2 and len(unmapped) == 3 and all(x in unmatched_a for x in unmapped)
    assert sorted(v for v, ids in a_dups.items() if len(ids) > 1) == sorted(crm_dup_emails)
    assert sorted(v for v, ids in b_dups.items() if len(ids) > 1) == sorted(erp_dup_emails)
    assert sorted(ambiguous.get("email", [])) == sorted(erp_dup_emails), ambiguous
    assert len(rejects) == 4 and len(prospects) == PLAN["prospect"]
    assert sum(1 for e in erp if "emails" not in e) == 1
    assert len({e["id"] for e in erp}) == len(erp)
    ids = [x["customer_id"] for x in crm if x["customer_id"]]
    assert len(set(ids)) == len(ids)
    for p in (CSV_PATH, JSON_PATH):
        assert os.path.getsize(p) < 200_000, (p, os.path.getsize(p))

    # Summary.
    out = sys.stdout
    out.write(f"wrote {os.path.relpath(CSV_PATH)}: {len(crm)} rows, {os.path.getsize(CSV_PATH)} bytes\n")
    out.write(f"wrote {os.path.relpath(JSON_PATH)}: {len(erp)} records, {os.path.getsize(JSON_PATH)} bytes\n")
    out.write(f"  CRM rows rejected (bad): {len(rejects)} = "
              + ", ".join(f"{x['customer_id'] or '<empty id>'}: {bad(x)} "
                          f"({x['credit_limit'] if bad(x) == 'bad_credit' else x['customer_since'] if bad(x) == 'bad_date' else ''})"
                          for x in rejects) + "\n")
    out.write(f"  CRM prospects (filtered): {len(prospects)}\n")
    out.write(f"  matched by crm_ref {by_key['crm_ref']}, by email {by_key['email']}, by phone only {by_key['phone']}\n")
    out.write(f"  differing fields on matched pairs: {diffs}\n")
    out.write(f"  within tolerance/loose (not a change): credit +0.005 {credit_within}, city case only {city_case_only}\n")
    out.write(f"  description != notes (create_only): {desc_differs}\n")
    out.write(f"  CRM unmatched: {len(unmatched_a)} = creates {PLAN['create']} + CRM dup-email rows {PLAN['crm_dup']}"
              f" + ambiguous vs ERP dups {PLAN['erp_dup_crm']} + empty email {len(empty_email)} + unmapped status {len(unmapped)}\n")
    out.write(f"  ERP unmatched: {len(pool_b)} = orphans {N_ORPHANS} + ERP dup-email records 4\n")
    out.write(f"  CRM duplicate emails: " + "; ".join(f"{v} {a_dups[v]}" for v in crm_dup_emails) + "\n")
    out.write(f"  ERP duplicate emails: " + "; ".join(f"{v} {b_dups[v]} (CRM {a_dups.get(v)})" for v in erp_dup_emails) + "\n")
    out.write(f"  empty email: {[x['customer_id'] for x in empty_email]}; unmapped status: "
              f"{[(x['customer_id'], x['status']) for x in unmapped]}\n")
    out.write(f"  ERP without emails: {[e['id'] for e in erp if 'emails' not in e]}\n")
    out.write(f"  empty country: {sum(1 for x in crm if not x['country'])}; "
              f"multi-line notes: {multiline_ids}; quoted companies: "
              f"{sum(1 for x in crm if ',' in x['company'] or chr(34) in x['company'])}\n")
    for d, (cid, field, cv, ev) in examples.items():
        out.write(f"  example {d}: {cid} {field}: CRM {cv!r} -> ERP {ev!r}\n")


if __name__ == "__main__":
    main()
