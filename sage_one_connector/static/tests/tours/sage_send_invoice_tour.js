/** @odoo-module */
/**
 * An accounts-team user sends a posted customer invoice to Sage from its form:
 * Send to Sage, confirm, and the form then shows the Sage number.
 * Started by test_tours.py on the invoice's form URL.
 */
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("sage_send_invoice_tour", {
    steps: () => [
        {
            content: "The posted invoice is not in Sage yet",
            trigger: ".o_form_view .o_field_widget[name=sage_state] .badge:contains(Not sent)",
        },
        {
            content: "Click Send to Sage",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_sage_send]:contains(Send to Sage)",
            run: "click",
        },
        {
            content: "Odoo asks for confirmation",
            trigger: ".modal .modal-body:contains(Are you sure you want to generate a Sage invoice?)",
        },
        {
            content: "Confirm",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Sage answered: the notification gives the Sage number",
            trigger: ".o_notification:contains(1 document(s) sent to Sage: SI-)",
        },
        {
            content: "The form now shows the Sent status",
            trigger: ".o_form_view .o_field_widget[name=sage_state] .badge:contains(Sent)",
        },
        {
            content: "…and the Sage number",
            trigger: ".o_form_view .o_field_widget[name=sage_number]:contains(SI-)",
        },
        {
            content: "Send to Sage is no longer offered",
            trigger: ".o_form_view .o_statusbar_buttons:not(:has(button[name=action_sage_send]))",
        },
    ],
});
