"""Word lists for the unstructured tier: general knowledge written here, plus the census name files in data/.

Nothing here comes from a benchmark's data: place names are countries, US states and large world cities; the
organisation and street words are the grammar of names (suffixes), not lists of entities.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Final

_DATA = Path(__file__).with_name("data")


@lru_cache(maxsize=None)
def names(kind: str) -> frozenset[str]:
    """``first`` or ``last``: capitalised census names (lower-cased set for case-free lookups)."""
    path = _DATA / ("first_names.txt" if kind == "first" else "surnames.txt")
    return frozenset(w.strip().lower() for w in path.read_text().splitlines() if w and not w.startswith("#"))


def _words(s: str) -> frozenset[str]:
    return frozenset(w.strip().lower() for w in s.split("|") if w.strip())


COUNTRIES: Final = _words("""afghanistan|albania|algeria|andorra|angola|argentina|armenia|australia|austria|azerbaijan|
bahamas|bahrain|bangladesh|barbados|belarus|belgium|belize|benin|bhutan|bolivia|bosnia|botswana|brazil|brunei|bulgaria|
burkina faso|burundi|cambodia|cameroon|canada|chad|chile|china|colombia|comoros|congo|costa rica|croatia|cuba|cyprus|
czechia|czech republic|denmark|djibouti|dominica|dominican republic|ecuador|egypt|el salvador|eritrea|estonia|eswatini|
ethiopia|fiji|finland|france|gabon|gambia|georgia|germany|ghana|greece|grenada|guatemala|guinea|guyana|haiti|honduras|
hong kong|hungary|iceland|india|indonesia|iran|iraq|ireland|israel|italy|jamaica|japan|jordan|kazakhstan|kenya|kiribati|
korea|south korea|north korea|kosovo|kuwait|kyrgyzstan|laos|latvia|lebanon|lesotho|liberia|libya|liechtenstein|
lithuania|luxembourg|madagascar|malawi|malaysia|maldives|mali|malta|mauritania|mauritius|mexico|micronesia|moldova|
monaco|mongolia|montenegro|morocco|mozambique|myanmar|namibia|nauru|nepal|netherlands|the netherlands|new zealand|
nicaragua|niger|nigeria|north macedonia|norway|oman|pakistan|palau|palestine|panama|papua new guinea|paraguay|peru|
philippines|poland|portugal|qatar|romania|russia|rwanda|samoa|san marino|saudi arabia|senegal|serbia|seychelles|
sierra leone|singapore|slovakia|slovenia|somalia|south africa|south sudan|spain|sri lanka|sudan|suriname|sweden|
switzerland|syria|taiwan|tajikistan|tanzania|thailand|togo|tonga|trinidad|tunisia|turkey|türkiye|turkmenistan|tuvalu|
uganda|ukraine|united arab emirates|uae|united kingdom|uk|great britain|britain|england|scotland|wales|
northern ireland|united states|united states of america|usa|us|america|uruguay|uzbekistan|vanuatu|vatican|venezuela|
vietnam|viet nam|yemen|zambia|zimbabwe|greenland|puerto rico|guam|europe|asia|africa|antarctica|oceania|
latin america|south america|north america|middle east|scandinavia|caribbean|siberia|bavaria|catalonia|
flanders|wallonia|quebec|ontario|british columbia|alberta|queensland|tasmania|new south wales|victoria""")
US_STATES: Final = _words("""alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|
hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|
mississippi|missouri|montana|nebraska|nevada|new hampshire|new jersey|new mexico|new york|north carolina|north dakota|
ohio|oklahoma|oregon|pennsylvania|rhode island|south carolina|south dakota|tennessee|texas|utah|vermont|virginia|
washington|west virginia|wisconsin|wyoming|district of columbia""")
STATE_ABBR: Final = frozenset("""AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ
NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR AA AE AP""".split())
CITIES: Final = _words("""london|paris|berlin|madrid|rome|milan|naples|turin|venice|florence|lisbon|porto|barcelona|
valencia|seville|sevilla|bilbao|amsterdam|rotterdam|the hague|brussels|antwerp|ghent|vienna|zurich|geneva|basel|bern|
munich|hamburg|frankfurt|cologne|stuttgart|dusseldorf|düsseldorf|leipzig|dresden|prague|warsaw|krakow|kraków|budapest|
bucharest|sofia|athens|istanbul|ankara|moscow|saint petersburg|st petersburg|kyiv|kiev|minsk|riga|vilnius|tallinn|
helsinki|stockholm|oslo|copenhagen|reykjavik|dublin|edinburgh|glasgow|manchester|liverpool|birmingham|leeds|bristol|
cardiff|belfast|oxford|cambridge|lyon|marseille|toulouse|nice|bordeaux|lille|nantes|strasbourg|luxembourg|monaco|
new york|new york city|los angeles|chicago|houston|phoenix|philadelphia|san antonio|san diego|dallas|san jose|austin|
jacksonville|san francisco|columbus|fort worth|indianapolis|charlotte|seattle|denver|boston|detroit|nashville|memphis|
portland|las vegas|baltimore|milwaukee|albuquerque|tucson|fresno|sacramento|atlanta|miami|orlando|tampa|cleveland|
pittsburgh|cincinnati|st louis|kansas city|minneapolis|new orleans|honolulu|anchorage|salt lake city|brooklyn|
manhattan|queens|the bronx|toronto|montreal|vancouver|ottawa|calgary|mexico city|guadalajara|monterrey|havana|
bogota|bogotá|lima|santiago|buenos aires|sao paulo|são paulo|rio de janeiro|brasilia|caracas|quito|montevideo|
tokyo|osaka|kyoto|yokohama|seoul|busan|beijing|shanghai|shenzhen|guangzhou|hong kong|taipei|singapore|bangkok|
hanoi|ho chi minh city|manila|jakarta|kuala lumpur|mumbai|bombay|delhi|new delhi|bangalore|bengaluru|chennai|
kolkata|hyderabad|pune|karachi|lahore|islamabad|dhaka|kathmandu|colombo|dubai|abu dhabi|doha|riyadh|jeddah|tehran|
baghdad|beirut|damascus|amman|jerusalem|tel aviv|cairo|alexandria|casablanca|marrakesh|tunis|algiers|lagos|abuja|
accra|nairobi|addis ababa|kampala|dar es salaam|johannesburg|cape town|durban|sydney|melbourne|brisbane|perth|
adelaide|auckland|wellington|canberra""")
ORG_SUFFIX: Final = _words("""inc|inc.|incorporated|llc|l.l.c.|ltd|ltd.|limited|corp|corp.|corporation|co|co.|company|
group|holdings|holding|plc|ag|gmbh|sa|s.a.|nv|n.v.|bv|b.v.|ab|asa|oyj|spa|s.p.a.|srl|pty|lp|llp|bank|bancorp|
bancshares|technologies|technology|systems|solutions|services|labs|laboratories|pharmaceuticals|pharma|industries|
international|partners|associates|foundation|institute|university|college|hospital|clinic|trust|fund|etf|capital|
energy|motors|airlines|airways|media|networks|communications|enterprises|ventures|brands|foods|insurance|financial|
resources|software|electronics|therapeutics|biosciences|semiconductor|semiconductors|entertainment|logistics|realty|
properties|reit|mining|petroleum|steel|chemicals|association|society|council|agency|ministry|bureau|committee|club|
academy|authority|commission|federation|organization|organisation|network|studios|records|publishing|press|bros|
brothers|sons|manufacturing|construction|consulting|healthcare|health|medical|pharmacy|hotels|resorts|airlines|
dynamics|robotics|analytics|digital|telecom|wireless|water|power|utilities|gas|oil|exchange|markets|securities|
investments|management|advisors|bancorporation|acquisition|trustees|cooperative|coop""")
ORG_WORDS: Final = _words("""google|alphabet|microsoft|apple|amazon|meta|facebook|netflix|tesla|ibm|intel|nvidia|amd|oracle|
samsung|sony|toyota|honda|volkswagen|siemens|nestle|nestlé|unilever|walmart|costco|target|disney|boeing|airbus|pfizer|
novartis|roche|bayer|basf|shell|bp|exxon|chevron|visa|mastercard|paypal|uber|lyft|airbnb|spotify|twitter|linkedin|
adobe|salesforce|cisco|dell|hp|lenovo|huawei|xiaomi|alibaba|tencent|baidu|infosys|wipro|accenture|deloitte|kpmg|pwc|
mckinsey|goldman sachs|morgan stanley|jpmorgan|citigroup|barclays|hsbc|ubs|fedex|ups|dhl|ikea|zara|h&m|nike|adidas|
starbucks|mcdonald's|coca-cola|pepsico|unicef|unesco|nasa|fbi|cia|nato|who|un|eu|fifa|uefa|red cross|greenpeace""")
STREET_SUFFIX: Final = _words("""street|st|st.|avenue|ave|ave.|av|road|rd|rd.|boulevard|blvd|blvd.|lane|ln|ln.|drive|dr|dr.|
court|ct|ct.|way|place|pl|pl.|terrace|ter|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|alley|crescent|cres|
close|row|walk|grove|gardens|heights|hill|hills|loop|pike|plaza|point|ridge|run|shores|springs|turnpike|view|vista|
crossing|creek|estates|expressway|freeway|glen|harbor|harbour|haven|junction|key|knoll|landing|locks|manor|meadow|
meadows|mews|mill|mills|mission|motorway|orchard|park|pass|path|pines|port|prairie|ranch|rest|route|station|summit|
throughway|trace|track|union|valley|village|well|wells|wharf""")
STREET_PREFIX: Final = _words("""rue|avenue|boulevard|chemin|place|quai|allée|calle|avenida|via|viale|piazza|corso|largo|
rua|travessa|praça|strasse|straße|str|str.|weg|gasse|platz|allee|ring|damm|laan|straat|plein|gracht|gade|vej|gatan|
vägen|gata|veien|katu|tie|ulica|ul.|utca|ulitsa|sokak|caddesi|cesta|ut""")
STREET_SUFFIX_GLUED: Final = ("strasse", "straße", "str.", "weg", "gasse", "platz", "allee", "straat", "laan", "gade",
                              "vej", "gatan", "vägen", "veien", "katu", "v.", "sv.", "gränd")
ADDRESS_UNIT: Final = _words("apt|apt.|apartment|suite|ste|ste.|unit|floor|fl|room|rm|bldg|building|#|box|po box")
PLACE_PREFIX: Final = _words("north|south|east|west|new|port|lake|mount|mt|fort|ft|saint|st|san|santa|los|las|el|la|le")
PLACE_SUFFIX: Final = ("ville", "town", "burg", "burgh", "borough", "boro", "ton", "field", "port", "land", "mouth",
                       "side", "fort", "berg", "view", "haven", "chester", "bury", "ford", "shire", "stad", "heim",
                       "furt", "dorf", "hausen", "polis", "grad", "abad", "pur", "pore")
TITLES: Final = _words("""mr|mr.|mrs|mrs.|ms|ms.|miss|mx|mx.|dr|dr.|prof|prof.|professor|sir|madam|madame|mme|mlle|
lady|lord|rev|rev.|reverend|father|sister|brother|capt|capt.|captain|sgt|sgt.|officer|detective|judge|senator|
governor|president|mayor|agent|coach|uncle|aunt|auntie|grandma|grandpa|cousin|señor|señora|herr|frau|monsieur""")
# Words that start capitalised but are not names: sentence-initial function words, calendar words, pronouns, ...
NOT_NAME: Final = _words("""i|i'm|i'll|i've|i'd|the|a|an|this|that|these|those|there|here|it|its|it's|he|she|we|they|you|
my|our|your|his|her|their|me|us|them|and|or|but|so|if|when|where|what|who|why|how|which|while|after|before|please|
thanks|thank|hello|hi|hey|dear|yes|no|not|ok|okay|sure|also|just|can|could|would|should|will|shall|may|might|must|do|
does|did|is|are|was|were|be|been|have|has|had|let|let's|get|got|call|send|tell|ask|give|find|make|see|look|check|
monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|june|july|august|september|
october|november|december|today|tomorrow|yesterday|morning|evening|night|christmas|easter|street|road|avenue|city|
state|county|country|north|south|east|west|new|old|great|little|big|first|last|next|one|two|three|all|any|some|
every|each|many|much|more|most|other|another|such|own|same|very|too|well|still|even|now|then|once|again|never|
always|often|sometimes|maybe|perhaps|however|therefore|because|since|although|though|unless|until|about|above|across|
against|along|among|around|at|by|for|from|in|into|near|of|off|on|onto|over|through|to|toward|under|up|upon|with|
within|without|account|card|bank|credit|debit|payment|order|phone|email|address|number|name|date|birth|password|
customer|service|support|manager|team|office|company|price|total|subject|re|fw|fwd|note|notes|dept|department|
department|hospital|university|school|church|mom|dad|mother|father|son|daughter|wife|husband|sir|madam|guys|
everyone|someone|anyone|nobody|god|lol|omg|btw|fyi|asap|ceo|cto|cfo|hr|it|pm|am|usd|eur|gbp|api|url|id|ssn|dob|
pin|iban|swift|bic|atm|faq|tv|pdf|cv|vip|uk|us|usa|eu|un|mr|mrs|ms|dr|prof|producer|director|writer|author|
professor|engineer|teacher|doctor|nurse|lawyer|treasurer|secretary|chairman|president|founder|member|fan|band|song|
union|weekly|daily|news|times|post|journal|magazine|review|select|where|insert|update|delete|table|users|user|null|
love|baby|family|kids|comedy|drama|mystery|suspense|horror|action|adventure|animation|romance|directed|starring|
treaty|article|chapter|section|part|act|law|business|country|club|world|national|international|global|general|
public|private|central|federal|royal|social|human|health|food|music|film|movie|show|series|season|episode|game|
games|sport|sports|art|arts|science|history|nature|life|home|house|room|hotel|restaurant|cafe|bar|shop|store|market|
center|centre|airport|station|beach|park|river|lake|mountain|island|road|bridge|tower|hall|library|museum|church|
stripes|killed|big|three|best|top|high|low|red|blue|green|black|white|gold|silver|golden|free|open|live|happy|
personal|info|information|contact|details|name|phone|fax|mobile|desk|office|work|email|e-mail|when|who|what|
dept|inc|ltd|llc|corp|co|group|holdings|company|bank|university|college|institute|capital|partners""")
