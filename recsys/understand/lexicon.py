"""A small, general English fashion lexicon: the words people use for garments and their attributes.

The parser (:mod:`recsys.understand.parse`) reads a request in the catalog's own vocabulary first -- its category and
attribute values and the title words that name them (:mod:`recsys.understand.vocabulary`) -- and uses this lexicon
only for words the catalog does not use itself ("trainers" where the catalog says "sneakers", "jumper" for
"sweater", "plaid" for "checked"). Each entry names *concepts*: a concept is kept only when the catalog has a value
that spells it (compared without case, spaces or hyphens: ``tshirt`` = ``t-shirt`` = ``T shirt``), so the lexicon
never invents a value a catalog lacks. A phrase may name several concepts (any of): "teal" is blue or green.

Sources: everyday British and American shop vocabulary (the synonym lists of retailers' search boxes), the colour
names of CSS (W3C CSS Color Module Level 4, as :mod:`PIL.ImageColor` ships them) for colours nobody listed here, and
for negation the cue lists of NegEx (Chapman et al., "A Simple Algorithm for Identifying Negated Findings and
Diseases in Discharge Summaries", J. Biomed. Inform. 2001): a cue opens a scope that ends at a clause boundary.
"""

from __future__ import annotations

#: Attributes in the order they count when a request cannot be met in full (the first is kept longest).
ATTRIBUTE_PRIORITY = ("category", "color", "pattern", "material", "sleeve", "length", "detail", "style")

#: ``{attribute: {concept: phrases}}``. Concepts are matched to the catalog's own values; phrases are lower case and
#: tokenised like the text (hyphens and spaces alike).
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "category": {
        "tshirt": ("t shirt", "tshirt", "tee", "tee shirt", "tees"),
        "shirt": ("shirt", "blouse", "button down", "button up", "oxford shirt", "dress shirt"),
        "sweater": ("sweater", "jumper", "pullover", "crewneck", "knitwear", "sweatshirt"),
        "tanktop": ("tank top", "tank", "tanktop", "singlet", "camisole", "cami", "vest top"),
        "hoodie": ("hoodie", "hoody", "hooded sweatshirt", "hooded top", "hooded jumper"),
        "trousers": ("trousers", "pants", "slacks", "chinos", "joggers", "sweatpants", "leggings", "jeans"),
        "shorts": ("shorts", "bermudas"),
        "skirt": ("skirt",),
        "dress": ("dress", "frock", "gown", "sundress"),
        "jacket": ("jacket", "blazer", "bomber", "windbreaker"),
        "coat": ("coat", "overcoat", "trench", "trench coat", "parka", "raincoat"),
        "sneakers": ("sneakers", "trainers", "trainer", "kicks", "running shoes", "tennis shoes", "gym shoes",
                     "sports shoes", "sneaks"),
        "boots": ("boots", "boot", "booties", "chelsea boots"),
        "heels": ("heels", "high heels", "pumps", "stilettos", "court shoes"),
        "handbag": ("handbag", "bag", "purse", "tote", "clutch", "shoulder bag"),
        "hat": ("hat", "cap", "beanie", "beret", "fedora"),
    },
    "color": {
        "black": ("black", "jet black", "ebony"),
        "white": ("white", "ivory", "off white", "snow white", "cream"),
        "grey": ("grey", "gray", "charcoal", "silver", "ash"),
        "navy": ("navy", "navy blue", "dark blue", "midnight blue"),
        "beige": ("beige", "tan", "camel", "cream", "sand", "khaki", "ecru", "nude", "taupe", "oatmeal", "off white"),
        "brown": ("brown", "chocolate", "coffee", "mocha", "cognac", "chestnut", "rust"),
        "red": ("red", "burgundy", "maroon", "wine", "crimson", "scarlet", "cherry", "oxblood"),
        "orange": ("orange", "rust", "tangerine", "apricot", "coral", "peach", "burnt orange"),
        "yellow": ("yellow", "mustard", "gold", "golden", "lemon"),
        "green": ("green", "olive", "emerald", "mint", "sage", "lime", "forest green", "bottle green", "khaki", "teal",
                  "turquoise"),
        "blue": ("blue", "light blue", "sky blue", "baby blue", "cobalt", "royal blue", "azure", "teal", "turquoise",
                 "cyan"),
        "purple": ("purple", "violet", "lilac", "lavender", "plum", "mauve", "magenta"),
        "pink": ("pink", "rose", "fuchsia", "blush", "hot pink", "salmon", "magenta", "coral"),
    },
    "pattern": {
        "solid": ("solid", "plain", "solid colour", "solid color", "single colour", "single color", "one colour",
                  "one color", "block colour", "no pattern", "unpatterned", "without a pattern", "without pattern"),
        "striped": ("striped", "stripes", "stripe", "stripy", "stripey", "pinstripe", "pinstriped", "breton"),
        "dotted": ("dotted", "dots", "dot", "spotted", "spots", "spotty", "polka dot", "polka dots", "polka dotted",
                   "dotty"),
        "checked": ("checked", "check", "checks", "checkered", "chequered", "plaid", "tartan", "gingham",
                    "houndstooth"),
        "floral": ("floral", "flowers", "flower", "flowery", "flowered", "flower print", "botanical"),
    },
    "material": {
        "cotton": ("cotton", "jersey"),
        "denim": ("denim", "jean", "chambray"),
        "leather": ("leather", "faux leather", "vegan leather", "suede", "leathery"),
        "knit": ("knit", "knitted", "wool", "woollen", "woolen", "wool knit", "cashmere", "cable knit"),
        "silk": ("silk", "silky", "satin", "chiffon"),
    },
    "sleeve": {
        "long": ("long sleeves", "long sleeve", "long sleeved", "full sleeves", "with long sleeves"),
        "short": ("short sleeves", "short sleeve", "short sleeved", "cap sleeves"),
        "sleeveless": ("sleeveless", "no sleeves", "without sleeves", "strapless", "sleeve less", "no sleeve",
                       "loses the sleeves", "lose the sleeves", "without the sleeves", "drop the sleeves"),
    },
    "length": {
        "short": ("short", "mini", "above the knee", "short length", "short cut"),
        "midi": ("midi", "knee length", "mid length", "mid calf", "calf length", "midi length", "medium length"),
        "long": ("long", "maxi", "full length", "floor length", "ankle length", "long length", "long cut"),
    },
    "detail": {
        "pocket": ("pocket", "pockets"),
        "logo": ("logo", "logos", "branding", "brand logo"),
        "buttons": ("buttons", "button", "buttoned"),
        "zipper": ("zipper", "zippers", "zip", "zips", "zipped", "zip up"),
        "bow": ("bow", "bows"),
        "none": ("no details", "without details", "no detail", "no embellishment"),
    },
    "style": {
        "formal": ("formal", "dressy", "elegant", "smart", "business", "classy"),
        "casual": ("casual", "everyday", "relaxed", "laid back"),
        "sporty": ("sporty", "athletic", "sport", "sports", "athleisure"),
        "street": ("street", "streetwear", "urban"),
        "boho": ("boho", "bohemian", "hippie", "hippy"),
    },
}

#: Words that imply more than one attribute: ``{phrase: {attribute: concept}}`` (jeans are denim trousers).
COMPOUNDS: dict[str, dict[str, str]] = {
    "jeans": {"category": "trousers", "material": "denim"},
    "jean jacket": {"category": "jacket", "material": "denim"},
    "denim jacket": {"category": "jacket", "material": "denim"},
    "leather jacket": {"category": "jacket", "material": "leather"},
    "maxi dress": {"category": "dress", "length": "long"},
    "mini skirt": {"category": "skirt", "length": "short"},
    "miniskirt": {"category": "skirt", "length": "short"},
    "polka dot dress": {"category": "dress", "pattern": "dotted"},
}

#: Words for a whole outfit slot (FASCODE's four and the catalog's others): ``{slot: phrases}``. A slot word asks
#: for any category of that slot ("black shoes" are black sneakers, boots or heels).
SLOT_WORDS: dict[str, tuple[str, ...]] = {
    "outer": ("outer", "outerwear", "outer layer", "layer", "something warm"),
    "top": ("top", "tops", "upper", "upper body"),
    "bottom": ("bottom", "bottoms", "lower", "lower body", "something for my legs"),
    "shoes": ("shoes", "shoe", "footwear", "something for my feet", "for my feet"),
    "accessory": ("accessory", "accessories"),
}

#: Occasions, read as a *preference* for a style (never a requirement: "for the office" does not rule out a
#: casual shirt the catalog labels otherwise).
OCCASIONS: dict[str, tuple[str, ...]] = {
    "formal": ("office", "work", "meeting", "interview", "job interview", "wedding", "business meeting", "gala",
               "dinner", "gallery opening", "reception"),
    "sporty": ("gym", "run", "running", "morning run", "hiking", "hike", "workout", "training", "tennis", "yoga",
               "jog", "jogging"),
    "casual": ("weekend", "picnic", "brunch", "shopping", "zoo", "errands", "everyday"),
    "street": ("concert", "night out", "skate", "skate park", "club", "downtown"),
    "boho": ("festival", "beach", "bonfire", "flea market", "garden party"),
}

#: Garments and accessories a catalog may lack; naming one it lacks gets a sentence, not a silent miss.
OTHER_GARMENTS = ("scarf", "scarves", "socks", "sock", "gloves", "glove", "belt", "belts", "sandals", "sandal",
                  "loafers", "loafer", "tie", "ties", "swimsuit", "bikini", "jumpsuit", "suit", "suits", "vest",
                  "cardigan", "cardigans", "sunglasses", "glasses", "necklace", "earrings", "watch", "backpack",
                  "slippers", "flip flops", "mules", "romper", "overalls", "poncho", "kimono", "waistcoat", "blouses",
                  "leggings", "tights", "pyjamas", "pajamas", "underwear", "bra", "lingerie", "jewellery", "jewelry")

#: Cues that negate what follows them, up to a clause boundary (NegEx's pre-negation cues, and the ways a caption
#: drops a value: "no longer", "loses the", "swap the X for").
NEGATION_CUES = ("not", "no", "non", "without", "except", "excluding", "exclude", "but not", "other than",
                 "apart from", "anything but", "anything except", "instead of", "rather than", "no longer", "never",
                 "avoid", "isn't", "aren't", "don't", "doesn't", "dont", "isnt", "arent", "nothing", "lose", "loses",
                 "losing", "lost", "drop", "drops", "remove", "removes", "ditch", "minus", "free of", "hate",
                 "dislike", "no more", "not a fan of", "swap", "swaps", "swap the", "replace", "replaces",
                 "get rid of", "neither", "nor", "anything not", "won't", "wont", "can't", "cannot", "shouldn't",
                 "mustn't", "but no", "any colour but", "any color but", "any colour except", "any color except",
                 "any colour other than", "any pattern but", "any material but", "everything but", "all but")
#: Words that close a negation scope once it has taken a value ("no stripes, in red": red is wanted).
SCOPE_ENDS = ("and", "but", "with", "in", "for", "to", "into", "then", "please", "that", "which", "made", "instead",
              "now", "so", "by", "as", "while", "though", "although", "yet", "make", "same", "keep", "add", "is",
              "are", "has", "have", "want", "need", "like", "i")
#: Clause boundaries that end a scope and a phrase group whatever came before.
BOUNDARY_TOKENS = (",", ".", ";", ":", "!", "?", "(", ")", "/")

#: Comparatives: ``{phrase: (attribute, direction)}``; direction -1 is down the attribute's order (shorter,
#: darker), +1 up. Colours are ordered by lightness (CIE L*), lengths and sleeves by :data:`ORDER_WORDS`.
COMPARATIVES: dict[str, tuple[str, int]] = {
    "darker": ("color", -1), "a darker colour": ("color", -1), "darker colour": ("color", -1),
    "darker shade": ("color", -1), "deeper": ("color", -1), "lighter": ("color", 1), "brighter": ("color", 1),
    "lighter colour": ("color", 1), "lighter shade": ("color", 1), "paler": ("color", 1),
    "longer sleeves": ("sleeve", 1), "shorter sleeves": ("sleeve", -1), "longer sleeve": ("sleeve", 1),
    "shorter sleeve": ("sleeve", -1), "longer": ("length", 1), "shorter": ("length", -1),
    "a longer cut": ("length", 1), "a shorter cut": ("length", -1), "longer cut": ("length", 1),
    "shorter cut": ("length", -1),
}
#: How far a colour must differ in lightness (CIE L*) to count as darker or lighter: about the smallest step
#: people name ("a darker shade").
COMPARABLE_LIGHTNESS = 12.0
#: The order of length and sleeve words (shortest first), for comparatives over a catalog's own values.
ORDER_WORDS = {
    "length": ("mini", "short", "cropped", "ankle", "knee", "midi", "mid", "medium", "long", "maxi", "full",
               "floor"),
    "sleeve": ("sleeveless", "none", "cap", "short", "elbow", "three quarter", "3/4", "long", "full"),
}
#: The value of an attribute that means "none of them": negating another value with nothing else said prefers it
#: ("no longer striped" is plain; "without the pocket" has no detail).
PLAIN_VALUES = ("solid", "plain", "none", "no")

#: Common English words never read as a misspelt catalog word (fuzzy matching skips them: "read" is not "red",
#: "shift" is not "shirt").
COMMON_WORDS = frozenset("""
a about above after again against all also am an and any anything are around as at away back bad be because been
before being below best better between both but buy by can cant come could day did do does doing done down each
else even ever every few find for from fun get give go going good got great had has have having he her here hers
him his how i if in into is it its just keep kind know last least left less let like little look looking lot love
made make many may me mine more most much must my near need new next nice night no nor not now of off old on once
one only or other our out over own part pair perfect piece please plus put quite rather read real really right
same say see seem shall she shift should show similar since so some something soon still such sure take than that
the their them then there these they thing think this those though through time to too try under until up upon us
use very want wanted was way we wear wearing week well went were what when where which while who whom why will
wish with within without would year yes yet you your yours date mate wait sort store
hello thanks thank please maybe perhaps today tonight tomorrow weather cold warm hot rain sunny summer winter
spring autumn fall size small medium large fit fits cheap price looks style outfit clothes clothing high low
waist waisted
""".split())
