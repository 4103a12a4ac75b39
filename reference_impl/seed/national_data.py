"""The national dataset's reference data: institutions, places, name groups with their shares of
the population, specialties, medications and vaccines (``national.py`` and ``national_record.py``
draw from them)."""

from __future__ import annotations

# (key, name, city, postal code, directory code, share of patients fed): codes 2001+ (the demo uses 1001-1004).
INSTITUTIONS: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("chl", "Centre Hospitalier de Luxembourg", "Luxembourg", "1210", "2001", 0.26),
    ("hrs", "Hôpitaux Robert Schuman", "Luxembourg", "2540", "2002", 0.22),
    ("chem", "Centre Hospitalier Emile Mayrisch", "Esch-sur-Alzette", "4005", "2003", 0.2),
    ("chdn", "Centre Hospitalier du Nord", "Ettelbruck", "9080", "2004", 0.12),
    ("lr", "Laboratoires Réunis", "Junglinster", "6131", "2005", 0.07),
    ("ketterthill", "Laboratoires Ketterthill", "Esch-sur-Alzette", "4384", "2006", 0.06),
    ("bionext", "BioneXt Lab", "Luxembourg", "1273", "2007", 0.04),
    ("incci", "Institut National de Chirurgie Cardiaque", "Luxembourg", "1210", "2008", 0.01),
    ("rehazenter", "Rehazenter", "Luxembourg", "2674", "2009", 0.01),
    ("chnp", "Centre Hospitalier Neuro-Psychiatrique", "Ettelbruck", "9002", "2010", 0.01),
)
CITIES = (
    ("Luxembourg", "1", 0.2), ("Esch-sur-Alzette", "4", 0.06), ("Differdange", "4", 0.05),
    ("Dudelange", "3", 0.04), ("Ettelbruck", "9", 0.02), ("Diekirch", "9", 0.01), ("Strassen", "8", 0.02),
    ("Bertrange", "8", 0.02), ("Mersch", "7", 0.02), ("Wiltz", "9", 0.01), ("Echternach", "6", 0.01),
    ("Pétange", "4", 0.03), ("Sanem", "4", 0.03), ("Hesperange", "5", 0.03), ("Mamer", "8", 0.02),
    ("Remich", "5", 0.01), ("Junglinster", "6", 0.01), ("Kayl", "3", 0.01), ("Schifflange", "3", 0.02),
    ("Mondorf-les-Bains", "5", 0.01),
)  # fmt: skip
STREETS = ("rue de la Gare", "rue Principale", "route d'Arlon", "rue de l'Église", "am Duerf", "rue du Brill",
           "avenue de la Liberté", "rue des Prés", "op der Heed", "rue du Moulin", "Grand-Rue",
           "rue de Luxembourg")  # fmt: skip
# (share of the population, surnames by frequency, female given names, male given names)
NAME_GROUPS: tuple[tuple[float, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (0.53,
     ("Schmit", "Muller", "Weber", "Wagner", "Hoffmann", "Thill", "Schmitz", "Klein", "Schroeder", "Kremer",
      "Reuter", "Meyer", "Majerus", "Becker", "Welter", "Kieffer", "Schiltz", "Weis", "Theisen", "Hansen",
      "Feller", "Ries", "Kayser", "Schneider", "Lentz", "Bausch", "Wirtz", "Steichen", "Goergen", "Faber",
      "Heinen", "Jacoby", "Thein", "Krier", "Origer", "Weydert", "Hilger", "Pauly", "Bettendorf", "Zeimet"),
     ("Marie", "Anne", "Sophie", "Claire", "Léa", "Emma", "Maddy", "Nathalie", "Carole", "Joëlle", "Martine",
      "Josée", "Lynn", "Mia", "Nora", "Tessy", "Fernande", "Monique"),
     ("Jean", "Marc", "Luc", "Paul", "Tom", "Gilles", "Pit", "Noah", "Claude", "Romain", "Patrick", "Jeff",
      "Yves", "Laurent", "Ben", "Max", "Raymond", "Guy")),
    (0.15,
     ("Da Silva", "Dos Santos", "Ferreira", "Pereira", "Rodrigues", "Gonçalves", "Fernandes", "Martins", "Lopes",
      "Alves", "Costa", "Oliveira", "Teixeira", "Monteiro", "Pinto", "Carvalho", "Ribeiro", "Marques", "Sousa"),
     ("Maria", "Ana", "Sofia", "Beatriz", "Inês", "Joana", "Rita", "Catarina", "Sandra", "Fátima"),
     ("João", "José", "Manuel", "António", "Rui", "Tiago", "Pedro", "Paulo", "Nuno", "Carlos")),
    (0.08,
     ("Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
      "Simon", "Michel", "Lefebvre", "Leroy", "Roux"),
     ("Camille", "Chloé", "Manon", "Julie", "Céline", "Isabelle", "Aurélie", "Élodie"),
     ("Thomas", "Nicolas", "Julien", "Pierre", "Antoine", "Mathieu", "Sébastien", "François")),
    (0.04,
     ("Rossi", "Bianchi", "Ferrari", "Russo", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno"),
     ("Giulia", "Francesca", "Chiara", "Laura", "Elena"), ("Luca", "Marco", "Giuseppe", "Andrea", "Matteo")),
    (0.04,
     ("Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Lambert", "Dupont"),
     ("Charlotte", "Lotte", "Elise", "Amélie"), ("Lucas", "Arthur", "Louis", "Jonas")),
    (0.03,
     ("Schmidt", "Fischer", "Meier", "Wolf", "Schulz", "Zimmermann", "Braun", "Krüger"),
     ("Katharina", "Hanna", "Lena", "Sabine"), ("Stefan", "Michael", "Andreas", "Jan")),
    (0.03,
     ("Hodžić", "Begić", "Kovačević", "Delić", "Mehmedović", "Hadžić", "Marković", "Petrović"),
     ("Amra", "Lejla", "Selma", "Jelena"), ("Amir", "Emir", "Adnan", "Dragan")),
    (0.1,
     ("Smith", "Nowak", "Kowalski", "Silva", "García", "Müller", "Andersen", "Horvat", "Diallo", "Nguyen",
      "Wang", "Ahmed", "Novak", "Papadopoulos", "O'Brien"),
     ("Olivia", "Zofia", "Aisha", "Lucía", "Ingrid", "Mei"), ("James", "Jakub", "Omar", "Diego", "Lars", "Wei")),
)  # fmt: skip
SPECIALTIES = (("394814009", "General practice", 0.4), ("394579002", "Cardiology", 0.06),
               ("394537008", "Paediatric specialty", 0.07), ("394585009", "Obstetrics and gynaecology", 0.06),
               ("394591006", "Neurology", 0.04), ("394914008", "Radiology", 0.07),
               ("394596001", "Chemical pathology", 0.05), ("394582007", "Dermatology", 0.04),
               ("394609007", "General surgery", 0.08), ("394589003", "Nephrology", 0.02),
               ("394583002", "Endocrinology", 0.03), ("394587001", "Psychiatry", 0.08))  # fmt: skip
MEDICATIONS = (("N02BE01", "Paracétamol", "1 comprimé de 1 g jusqu'à 3 fois par jour"),
               ("C10AA05", "Atorvastatine", "1 comprimé de 20 mg le soir"),
               ("A10BA02", "Metformine", "1 comprimé de 850 mg matin et soir"),
               ("C09AA05", "Ramipril", "1 comprimé de 5 mg le matin"),
               ("A02BC01", "Oméprazole", "1 gélule de 20 mg le matin à jeun"),
               ("J01CA04", "Amoxicilline", "1 g 3 fois par jour pendant 7 jours"),
               ("M01AE01", "Ibuprofène", "400 mg si douleur, maximum 3 fois par jour"),
               ("C07AB07", "Bisoprolol", "1 comprimé de 5 mg le matin"),
               ("N06AB06", "Sertraline", "1 comprimé de 50 mg le matin"),
               ("R03AC02", "Salbutamol", "2 bouffées si gêne respiratoire"),
               ("B01AC06", "Acide acétylsalicylique", "1 sachet de 100 mg par jour"),
               ("H03AA01", "Lévothyroxine", "1 comprimé de 75 µg le matin à jeun"))  # fmt: skip
VACCINES = (("J07BB02", "Vaccin grippal inactivé"), ("J07BN01", "Vaccin COVID-19 à ARNm"),
            ("J07CA09", "Vaccin hexavalent DTCa-Polio-Hib-HepB"), ("J07BD52", "Vaccin rougeole-oreillons-rubéole"),
            ("J07AL02", "Vaccin pneumococcique conjugué"), ("J07BM03", "Vaccin papillomavirus 9-valent"),
            ("J07CA02", "Rappel diphtérie-tétanos-coqueluche-polio"), ("J07BC02", "Vaccin hépatite A"))  # fmt: skip
